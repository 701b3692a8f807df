"""Logs an operator can search: one JSON object per line on stderr (or readable text in development),
every line written during a request carrying that request's id.

The request id is the client's `X-Request-Id` when it is a sane one (bounded, safe characters: a load
balancer's or a POS vendor's own id then joins their logs to ours), else a fresh uuid4. It lives on
`flask.g.request_id`, goes back in the `X-Request-Id` header of every response and in every problem
body (loyalty/pos_api/problems.py), so a POS vendor can quote it. `g.request_started` (a
`perf_counter` reading) is set by the same first hook; loyalty/metrics.py times requests from it.

Everything is configured by `register_logging(app)` in the factory: the handler goes on the root
logger, so the lines of Flask, Alembic, RQ and the libraries come out in the same format.
"""

import json
import logging
import re
import sys
import time
import uuid

from flask import Flask, Response, g, has_request_context, request
from flask.logging import default_handler

REQUEST_ID_HEADER = "X-Request-Id"
# A client's id is kept when it is 1-128 of these characters (uuids, hex, ULIDs, "Root=1-..." trace
# ids); anything else (spaces, quotes, control characters, too long) is replaced, never echoed.
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")
ACCESS_LOGGER = "loyalty.access"
LOG_FORMATS = ("json", "text")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"

# What every LogRecord holds anyway: anything else on a record came from `extra=` and is written out.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "request_id", "taskName"}


def register_logging(app: Flask) -> None:
    """Send every logger's lines to stderr in LOG_FORMAT at LOG_LEVEL, and give each request an id and
    an access line. Run it first among the registrations: its hooks then bracket everything else."""
    log_format = app.config["LOG_FORMAT"] or ("text" if app.config["ENVIRONMENT"] == "development" else "json")
    if log_format not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(add_request_id)
    root = logging.getLogger()
    # A second app in one process (tests, the worker's scheduler) replaces the handler, never doubles it.
    for old in [old for old in root.handlers if isinstance(old, StderrHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(app.config["LOG_LEVEL"])
    # Flask's own handler would write each of the app's lines a second time, as text.
    app.logger.removeHandler(default_handler)
    app.before_request(start_request)
    app.after_request(finish_request)


class StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time (a test's capture, a reopened stream), not to
    the object it was when the app was built."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def add_request_id(record: logging.LogRecord) -> bool:
    """Handler filter: the current request's id on every line (None outside a request)."""
    record.request_id = g.get("request_id") if has_request_context() else None
    return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601 with Z), level, logger, message, request_id, the
    record's `extra=` fields, and the traceback as `exception`."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def current_request_id() -> str | None:
    return g.get("request_id") if has_request_context() else None


def start_request() -> None:
    """First `before_request` hook: the request's id and start time."""
    g.request_started = time.perf_counter()
    incoming = request.headers.get(REQUEST_ID_HEADER)
    g.request_id = incoming if incoming and SAFE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex


_access_log = logging.getLogger(ACCESS_LOGGER)


def finish_request(response: Response) -> Response:
    """Last `after_request` hook (of the app's, errors' and 404s' responses too): the id goes back to
    the client, and one access line is written."""
    request_id = g.get("request_id")
    if request_id is None:  # a hook before ours failed: the request still gets an id to quote
        request_id = g.request_id = uuid.uuid4().hex
    response.headers[REQUEST_ID_HEADER] = request_id
    if _access_log.isEnabledFor(logging.INFO):
        started = g.get("request_started")
        duration_ms = round((time.perf_counter() - started) * 1000, 3) if started is not None else None
        method, path, status = request.method, request.path, response.status_code
        # makeRecord and handle, as Logger.info does, less its walk up the stack for the caller's file
        # and line: always this function, and the dearest part of the line after the formatting.
        _access_log.handle(_access_log.makeRecord(
            ACCESS_LOGGER, logging.INFO, __file__, 0, "%s %s %s %sms", (method, path, status, duration_ms), None,
            extra={"method": method, "path": path, "status": status, "duration_ms": duration_ms}))
    return response
