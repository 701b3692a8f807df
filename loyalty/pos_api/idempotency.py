"""Replaying a client's first answer (API.md "Idempotency", DESIGN.md invariant 5).

A retried POST with the same key and the same body gets the stored first response with
`Idempotent-Replayed: true`; the same key with another body is a conflict. The record is written in
the same DB transaction as the work, so either both exist or neither does.
"""

import hashlib
import json
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Response
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from loyalty.auth.services import ApiCaller
from loyalty.bulk import insert_rows
from loyalty.errors import IdempotencyConflict
from loyalty.sales.models import IdempotencyRecord

# A POST that loses a race is tried again, up to this many attempts in all: a twin committed first
# (a unique key fails; the retry finds its stored answer and replays it), or PostgreSQL broke a
# deadlock or a serialization conflict by aborting this transaction (the retry simply succeeds).
ATTEMPTS = 3
RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization_failure, deadlock_detected


def lost_race(error: DBAPIError) -> bool:
    """Whether a failed commit is worth another attempt (see ATTEMPTS)."""
    return isinstance(error, IntegrityError) or getattr(error.orig, "sqlstate", None) in RETRYABLE_SQLSTATES


# Read on every sale request (plain rows: no ORM objects to build), so built once.
STORED_ANSWERS = (
    sa.select(IdempotencyRecord.key, IdempotencyRecord.response_status, IdempotencyRecord.response_body,
              IdempotencyRecord.request_sha256)
    .where(IdempotencyRecord.client_id == sa.bindparam("client_id"),
           IdempotencyRecord.key.in_(sa.bindparam("keys", expanding=True)))
)


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: dict
    # The request it answered: only a retry with this same hash is replayed.
    request_sha256: str


def fingerprint(payload) -> str:
    """Hash of the request body as data: key order and white space do not make a retry different."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def find_stored(session: Session, client: ApiCaller,
                fingerprints: dict[str, str]) -> dict[str, StoredResponse | IdempotencyConflict]:
    """For each key already answered: the stored response, or a conflict when the body differs."""
    found: dict[str, StoredResponse | IdempotencyConflict] = {}
    for key, stored in load_stored(session, client, fingerprints).items():
        found[key] = stored if stored.request_sha256 == fingerprints[key] else conflict()
    return found


def load_stored(session: Session, client: ApiCaller, keys) -> dict[str, StoredResponse]:
    """The stored answers to those of `keys` already answered, whatever body each retry carries."""
    keys = list(keys)
    if not keys:
        return {}
    rows = session.execute(STORED_ANSWERS, {"client_id": client.id, "keys": keys})
    return {row.key: StoredResponse(row.response_status, row.response_body, row.request_sha256) for row in rows}


def conflict() -> IdempotencyConflict:
    return IdempotencyConflict("this key was already used with a different request body")


def remember(session: Session, client: ApiCaller, key: str, request_sha256: str, status: int, body: dict) -> None:
    remember_all(session, client, [(key, request_sha256, status, body)])


def remember_all(session: Session, client: ApiCaller, answers: list[tuple[str, str, int, dict]]) -> None:
    """Store (key, request_sha256, status, body) answers with one multi-row INSERT; a key already
    stored (a concurrent twin committed first) fails here with IntegrityError."""
    insert_rows(session, IdempotencyRecord.__table__, [
        {"client_id": client.id, "key": key, "request_sha256": request_sha256, "response_status": status,
         "response_body": body} for key, request_sha256, status, body in answers])


REPLAYED_HEADERS = {"Idempotent-Replayed": "true"}


def replay(stored: StoredResponse) -> Response:
    return json_response(stored.body, stored.status, headers=REPLAYED_HEADERS)


def json_response(body, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status=status, headers=headers or {},
                    mimetype="application/json")
