"""The API's side of answering a POST once (docs/api.md "Idempotency"; the rules are loyalty.answer_once):
the `Idempotency-Key` header, and an answer as a response, with `Idempotent-Replayed: true` when it
is the stored one."""

import json
from collections.abc import Callable

from flask import Response, request

from loyalty.answer_once import answer_once
from loyalty.errors import ValidationFailed
from loyalty.extensions import db
from loyalty.pos_api.auth import current_client

# An `Idempotency-Key` is stored with its endpoint prefixed, in a column of 300 characters.
MAX_IDEMPOTENCY_KEY = 255
REPLAYED_HEADERS = {"Idempotent-Replayed": "true"}


def json_response(body, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status=status, headers=headers or {},
                    mimetype="application/json")


def run_idempotent(key: str | None, request_sha256: str, work: Callable[[], tuple[int, dict]]) -> Response:
    """Answer the request once (loyalty.answer_once) for the calling client, as a JSON response."""
    answer = answer_once(db.session, current_client(), key, request_sha256, work)
    return json_response(answer.body, answer.status, headers=REPLAYED_HEADERS if answer.replayed else None)


def header_idempotency_key(endpoint: str) -> str | None:
    """The request's `Idempotency-Key` named for its endpoint, or None; too long a key is refused here
    rather than by the database (a 500)."""
    header_key = request.headers.get("Idempotency-Key")
    if not header_key:
        return None
    if len(header_key) > MAX_IDEMPOTENCY_KEY:
        raise ValidationFailed("Idempotency-Key is too long",
                               errors={"Idempotency-Key": [f"At most {MAX_IDEMPOTENCY_KEY} characters."]})
    return f"{endpoint}:{header_key}"
