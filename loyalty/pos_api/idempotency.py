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
from loyalty.bulk import insert_new_rows, insert_rows, update_rows
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


# What a claimed record holds until its answer is stored.
CLAIMED = {"response_status": 0, "response_body": {}}


def claim_keys(session: Session, claims: list[tuple[int, str, str]]) -> dict[tuple[int, str], int]:
    """Take the keys of (client_id, key, request_sha256) `claims` that no committed answer holds: a
    record per key, inserted now and, before this transaction commits, given its answer
    (`answer_claims`) or deleted (`release_claims`), so nobody ever reads a claim. Returns the record
    id of each key taken. A key another open transaction has taken makes this wait for it: taken here
    if that one rolls back or releases it, left otherwise (its answer is then committed, and the next
    statement sees it under READ COMMITTED). Every claim of a transaction is taken in this one
    statement, before any other lock, in key order: two claimers cannot deadlock on keys."""
    taken = insert_new_rows(session, IdempotencyRecord.__table__, [
        {"client_id": client_id, "key": key, "request_sha256": request_sha256}
        for client_id, key, request_sha256 in claims],
        unique=("client_id", "key"), returning=("client_id", "key", "id"), same=CLAIMED)
    return {(client_id, key): record_id for client_id, key, record_id in taken}


def answer_claims(session: Session, answers: list[tuple[int, int, dict]]) -> None:
    """Store (record id, status, body) answers in the records `claim_keys` took."""
    update_rows(session, IdempotencyRecord.__table__, [
        {"id": record_id, "response_status": status, "response_body": body} for record_id, status, body in answers])


def release_claims(session: Session, record_ids: list[int]) -> None:
    """Give up claimed keys that get no stored answer (the request was refused): a retry posts again."""
    if record_ids:
        records = IdempotencyRecord.__table__
        session.execute(sa.delete(records).where(records.c.id.in_(record_ids)))


REPLAYED_HEADERS = {"Idempotent-Replayed": "true"}


def replay(stored: StoredResponse) -> Response:
    return json_response(stored.body, stored.status, headers=REPLAYED_HEADERS)


def json_response(body, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status=status, headers=headers or {},
                    mimetype="application/json")
