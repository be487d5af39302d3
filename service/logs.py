"""Log lines in one format for the app's own lines and gunicorn's: text in development, JSON with LOG_FORMAT=json.

A request's line names its request id, client id, route (the URL rule, never the path or the query), method, status
and duration; never a body, a query string or an identifier from the path. Exceptions are logged with their type and
stack but not their message, which can quote data: a unique violation names the duplicate key's value.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from flask import Response, g, request
from pythonjsonlogger.json import JsonFormatter

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# The app leaves a request's fields in the WSGI environ, where gunicorn's access line finds them.
ENVIRON_KEY = "risk_register.request"
# A method outside these is logged as OTHER: it is whatever the client sent.
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}

request_log = logging.getLogger("service.request")

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def withheld_traceback(exc_info: ExcInfo) -> str:
    """The traceback of an exception and of those it came from, with each exception's type but not its message."""
    chain = []
    current: traceback.TracebackException | None = traceback.TracebackException(*exc_info)
    while current is not None:
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return "\n".join(
        "Traceback (most recent call last):\n" + "".join(link.stack.format())
        + f"{link.exc_type.__module__}.{link.exc_type.__qualname__} (message withheld)"
        for link in reversed(chain))


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        record.exc_text = None  # another handler's cached traceback would carry the message
        return super().format(record)

    def formatException(self, ei: Any) -> str:
        return withheld_traceback(ei)


class JsonLineFormatter(JsonFormatter):
    def formatException(self, ei: Any) -> str:
        return withheld_traceback(ei)


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonLineFormatter("%(levelname)s %(name)s %(message)s", timestamp=True,
                                 rename_fields={"levelname": "level", "name": "logger"})
    return TextFormatter(TEXT_FORMAT)


class RegisterHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `configure` installs on the root logger (stderr)."""


def configure(level: str, log_format: str) -> None:
    """Log to stderr in `log_format`, unless something else (pytest, an app embedding ours) configured logging."""
    root = logging.getLogger()
    ours = [handler for handler in root.handlers if isinstance(handler, RegisterHandler)]
    if root.handlers and not ours:
        return
    handler = ours[0] if ours else RegisterHandler()
    handler.setFormatter(formatter(log_format))
    if not ours:
        root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)  # a warning is a log line in the same format, not raw text on stderr


def request_line(fields: Mapping[str, Any]) -> str:
    """The text of a request's line, from its fields."""
    def shown(name: str) -> Any:
        return "-" if fields.get(name) is None else fields[name]

    return (f"{shown('request_id')} {shown('method')} {shown('route')} {shown('status')} "
            f"{fields.get('duration_ms') or 0:.1f}ms client={shown('client_id')}")


def safe_method(method: str) -> str:
    return method if method in METHODS else "OTHER"


def log_request(response: Response, duration_seconds: float) -> None:
    """The app's line for a request, and its fields for gunicorn's access line."""
    fields = {
        "request_id": g.get("request_id"),
        "client_id": g.get("client_id"),
        "route": request.url_rule.rule if request.url_rule else None,
        "method": safe_method(request.method),
        "status": response.status_code,
        "duration_ms": round(duration_seconds * 1000, 1),
    }
    request.environ[ENVIRON_KEY] = fields
    request_log.info(request_line(fields), extra=fields)


def log_unhandled(logger: logging.Logger, exc_info: ExcInfo) -> None:
    """Flask's own line for an unhandled exception names the raw path; this one names the route."""
    route = request.url_rule.rule if request.url_rule else None
    logger.error("unhandled exception in %s %s", safe_method(request.method), route or "-", exc_info=exc_info,
                 extra={"request_id": g.get("request_id"), "route": route})


def gunicorn_logging(log_format: str) -> dict[str, Any]:
    """gunicorn's logconfig_dict: its error and access lines in the app's format. gunicorn.error stays at INFO
    whatever LOG_LEVEL says: its debug lines quote raw request lines."""
    def handler(stream: str) -> dict[str, str]:
        return {"class": "logging.StreamHandler", "formatter": "register", "stream": f"ext://sys.{stream}"}

    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"register": {"()": "service.logs.formatter", "log_format": log_format}},
        "handlers": {"stdout": handler("stdout"), "stderr": handler("stderr")},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["stdout"], "propagate": False},
        },
        # The root logger is the app's: each worker's create_app configures it (`configure`).
        "root": {"level": "WARNING", "handlers": []},
    }
