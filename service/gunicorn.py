"""gunicorn, configured once: the same settings for `risk-register serve`, Docker and the benchmarks."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

SETTINGS = {
    "worker_class": "sync",
    "timeout": 30,  # a worker stuck longer than this is replaced
    "graceful_timeout": 20,
    "keepalive": 5,
    "limit_request_line": 4094,
    "limit_request_fields": 50,
    "accesslog": None,  # the service logs each request itself, without query strings
}


class _Server(BaseApplication):
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from service.wsgi import app

        return app


def serve(*, bind: str, workers: int) -> None:
    _Server(SETTINGS | {"bind": bind, "workers": workers}).run()
