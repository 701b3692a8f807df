"""RFC 9457 problem responses for everything under /api/, for domain errors and HTTP errors alike."""

import json
from typing import NoReturn

import flask_smorest
from flask import Flask, Response, current_app, render_template_string, request
from werkzeug.exceptions import HTTPException

from loyalty.errors import DomainError, InvalidFields
from loyalty.logs import current_request_id

PROBLEM_BASE = "https://loyalty.dev/problems/"

# HTTP errors raised by Flask, Werkzeug, webargs or Flask-Limiter, mapped to the contract's slugs.
HTTP_SLUGS = {
    400: ("validation-error", 422, "Validation failed"),
    401: ("unauthorized", 401, "Unauthorized"),
    403: ("forbidden", 403, "Forbidden"),
    404: ("not-found", 404, "Not found"),
    405: ("method-not-allowed", 405, "Method not allowed"),
    413: ("payload-too-large", 413, "Payload too large"),
    415: ("validation-error", 422, "Validation failed"),
    422: ("validation-error", 422, "Validation failed"),
    429: ("rate-limited", 429, "Too many requests"),
}


def problem_response(slug: str, status: int, title: str, detail: str | None = None, *,
                     errors: dict | None = None, headers: dict | None = None) -> Response:
    body = {"type": PROBLEM_BASE + slug, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    return Response(json.dumps(_with_request_id(body)), status=status, headers=headers or {},
                    mimetype="application/problem+json")


def refuse_as_schema(error: InvalidFields) -> NoReturn:
    """Answer fields the sale path refused (a sale's or refund's own figures) as the request's schema
    answers the fields it refuses: a 422 whose `errors` name them and whose detail is the HTTP one."""
    flask_smorest.abort(422, messages={"json": error.errors})


def problem_body(error: DomainError) -> dict:
    body = {"type": PROBLEM_BASE + error.slug, "title": error.title, "status": error.status,
            "detail": error.detail}
    if error.errors:
        body["errors"] = error.errors
    return body


def _with_request_id(body: dict) -> dict:
    """A problem answered to a request carries its id (loyalty/logs.py), for the client to quote. Only
    the response's own body: the problems inside a batch answer share that answer's id."""
    request_id = current_request_id()
    if request_id is not None:
        body["request_id"] = request_id
    return body


def register_problem_handlers(app: Flask) -> None:
    app.register_error_handler(DomainError, _domain_error)
    app.register_error_handler(HTTPException, _http_error)


def _wants_problem() -> bool:
    return request.path.startswith("/api/")


def _domain_error(error: DomainError):
    if _wants_problem():
        return Response(json.dumps(_with_request_id(problem_body(error))), status=error.status,
                        mimetype="application/problem+json")
    return _html_error(error.status, error.title, error.detail)


def _http_error(error: HTTPException):
    if not _wants_problem():
        return error
    slug, status, title = HTTP_SLUGS.get(error.code, ("http-error", error.code or 500, error.name))
    data = getattr(error, "data", None) or {}
    errors = data.get("messages") or data.get("errors")
    if isinstance(errors, dict) and set(errors) <= {"json", "query", "querystring", "headers", "view_args"}:
        errors = _errors_by_field(errors)
    # Keep the headers the error itself carries (Allow on a 405, which RFC 9110 requires; WWW-Authenticate
    # on a 401): only the body and its type are ours.
    headers = {name: value for name, value in error.get_headers() if name.lower() != "content-type"}
    if status == 429:
        headers["Retry-After"] = str(_retry_after(error))
    detail = data.get("message") or error.description
    if status >= 500:
        current_app.logger.exception("server error on %s", request.path)
        detail = "internal error"
    return problem_response(slug, status, title, detail, errors=errors if isinstance(errors, dict) else None,
                            headers=headers)


def _errors_by_field(by_location: dict) -> dict:
    """webargs nests messages under the location; the contract names fields directly. A message about
    the body as a whole (not JSON at all) is filed under `_schema`, where marshmallow files a body of
    the wrong type."""
    errors: dict = {}
    for messages in by_location.values():
        if isinstance(messages, dict):
            errors.update(messages)
        else:
            errors.setdefault("_schema", []).extend(messages)
    return errors


def _retry_after(error: HTTPException) -> int:
    limit = getattr(error, "limit", None)
    try:
        return max(1, int(limit.limit.get_expiry()))
    except (AttributeError, TypeError, ValueError):
        return 1


def _html_error(status: int, title: str, detail: str):
    page = "<!doctype html><title>{{ title }}</title><h1>{{ title }}</h1><p>{{ detail }}</p>"
    return render_template_string(page, title=title, detail=detail), status
