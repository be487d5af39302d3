"""gunicorn configuration (`gunicorn -c python:service.gunicorn service.wsgi:app`), shared by
`risk-register serve`, the Docker image and the benchmarks."""

from __future__ import annotations

import gc
import http
import json
import os
import ssl
import uuid
from typing import Any

from gunicorn import glogging
from gunicorn.http import errors
from gunicorn.workers.sync import SyncWorker

from service import logs
from service.audit.sealing import start_sealer
from service.config import instance_path, log_format
from service.http import PROBLEM_JSON, SERVER_ERROR, conventional_headers, problem_document
from service.stats.folding import start_folder

worker_class = "service.gunicorn.RegisterWorker"
# A worker stuck longer than this (a slow client included: sync workers read the request themselves) is killed and
# replaced. In production put a buffering reverse proxy (nginx, a load balancer) in front, so slow clients hold the
# proxy's connections rather than one of the few workers.
timeout = 30
graceful_timeout = 20
keepalive = 5
limit_request_line = 4094
limit_request_fields = 50
limit_request_field_size = 8190
# The access line is RegisterLogger's (below), in the app's format through logconfig_dict: gunicorn's own would print
# the raw request target, with identifiers in its path and its query string.
accesslog = None
logger_class = "service.gunicorn.RegisterLogger"
logconfig_dict = logs.gunicorn_logging(log_format(os.environ))
# gunicornc's control socket beside the service's other files, not in ~/.gunicorn/ (gunicorn 25.1 and newer).
control_socket = str(instance_path(os.environ) / "gunicorn.ctl")


class RegisterLogger(glogging.Logger):
    """gunicorn's lines without what a client sent: the access line names the app's route and client, not the
    request target, and an error about a request withholds its target and content."""

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        fields = {"request_id": None, "client_id": None, "route": None} | environ.get(logs.ENVIRON_KEY, {})
        fields |= {"method": logs.safe_method(req.method), "status": int(str(resp.status).split()[0]),
                   "duration_ms": round(request_time.total_seconds() * 1000, 1)}
        self.access_log.info(logs.request_line(fields), extra=fields)

    def exception(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        if str(msg).startswith("Error handling request"):
            msg, args = "Error handling request (its target is not logged)", ()
        super().exception(msg, *args, **kwargs)

    def warning(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        if str(msg).startswith("Invalid request from ip="):
            msg, args = "Invalid request refused (its content is not logged)", ()
        super().warning(msg, *args, **kwargs)


# Newer gunicorn tells a response header the app got wrong apart from a bad request header.
_APP_FAULTS = tuple(getattr(errors, name) for name in ("InvalidResponseHeader", "InvalidResponseHeaderName")
                    if hasattr(errors, name))


def refusal(exc: BaseException) -> tuple[int, str]:
    """The status and detail for a request gunicorn refuses before the app sees it (as gunicorn itself would
    answer, in the service's words; the detail never quotes the request)."""
    if isinstance(exc, errors.LimitRequestLine):
        return 414, "The request line is too long; send long input in a body."
    if isinstance(exc, errors.LimitRequestHeaders):
        return 431, "A request header is too large, or there are too many."
    if isinstance(exc, errors.ForbiddenProxyRequest):
        return 403, "Requests through this proxy are not accepted."
    if isinstance(exc, errors.UnsupportedTransferCoding):
        return 501, "This transfer coding is not supported."
    if isinstance(exc, (errors.ConfigurationProblem, *_APP_FAULTS)):
        return 500, SERVER_ERROR
    if isinstance(exc, errors.ParseException | ssl.SSLError):
        return 400, "The request is not valid HTTP/1.1."
    return 500, SERVER_ERROR


def refusal_bytes(status: int, detail: str) -> bytes:
    """A whole HTTP response in the service's one error shape, with the headers every response carries."""
    request_id = uuid.uuid4().hex
    body = json.dumps(problem_document(status, detail, request_id)).encode()
    headers = {"Content-Type": PROBLEM_JSON, "Content-Length": str(len(body)), "Connection": "close",
               **conventional_headers(request_id)}
    head = f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    return head.encode("latin-1") + body


class RegisterWorker(SyncWorker):
    """gunicorn's sync worker, answering what it refuses itself (a request line over limit_request_line, a header
    over limit_request_field_size, malformed HTTP) as problem+json with the service's headers, not HTML, and
    logging the kind of refusal only: gunicorn's own message quotes the request line, query string included."""

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        status, detail = refusal(exc)
        if status >= 500:
            self.log.exception("error handling a request: %s", type(exc).__name__)
        else:
            self.log.warning("refused a request before the app: %s (%d)", type(exc).__name__, status)
        try:
            client.sendall(refusal_bytes(status, detail))
        except OSError:
            self.log.debug("could not send the refusal")


def child_exit(_server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges from the shared Prometheus files."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


# The cyclic garbage collector took ~18% of a 500-incident batch's CPU: at the default threshold of 700
# allocations it ran every few hundred rows, each time walking every object the batch still held. Requests leave
# little cyclic garbage (reference counting frees the rest), so collecting young objects every 20,000 allocations
# keeps memory flat while the batch path stops paying for it.
GC_THRESHOLDS = (20_000, 20, 50)


def tune_garbage_collection() -> None:
    """Freeze what the app allocated while loading (never garbage; no collection walks it again), and collect
    young objects less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def post_worker_init(worker: Any) -> None:
    tune_garbage_collection()
    if "settings" not in getattr(worker.wsgi, "extensions", {}):
        return  # another WSGI app under this configuration (the benchmark's baseline app): nothing to seal or fold
    # Each worker seals the access log in a thread of its own; the sealers take turns through one lock.
    start_sealer(worker.wsgi)
    # And folds pending statistics changes into the rollups, so a statistics read has little left to fold.
    start_folder(worker.wsgi)


def worker_exit(_server: Any, worker: Any) -> None:
    """Stop this worker's sealer cleanly: a round in progress commits or rolls back, never half-written."""
    for name in ("sealer", "folder"):
        rounds = getattr(worker, "wsgi", None) and worker.wsgi.extensions.get(name)
        if rounds is not None:
            rounds.stop()
