"""Answering a POST once, for every front end that needs it (the API's sales, refunds, enrolments and
offers; the staff console's hand-recorded sales).

A retried POST with the same key and the same body gets the stored first answer (`replayed`); the
same key with another body is a conflict. The record is written in the same DB transaction as the
work, so either both exist or neither does. Two ways in:

- `answer_once`: optimistic, for one request: do the work, store its answer and commit; only when
  the work fails (a retry meets the unique keys, or the state its first attempt left) are the stored
  answers read.
- `claim_keys`, `answer_claims`, `release_claims`: for the sale path, which answers many sales in
  one transaction (pos_api/sale_posting.py): keys are claimed up front so twins in flight wait.
"""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from loyalty.auth.models import ApiClient
from loyalty.auth.services import ApiCaller
from loyalty.bulk import insert_new_rows, insert_rows, update_rows
from loyalty.errors import DomainError, IdempotencyConflict
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


def find_stored(session: Session, client: ApiClient | ApiCaller,
                fingerprints: dict[str, str]) -> dict[str, StoredResponse | IdempotencyConflict]:
    """For each key already answered: the stored response, or a conflict when the body differs."""
    found: dict[str, StoredResponse | IdempotencyConflict] = {}
    for key, stored in load_stored(session, client, fingerprints).items():
        found[key] = stored if stored.request_sha256 == fingerprints[key] else conflict()
    return found


def load_stored(session: Session, client: ApiClient | ApiCaller, keys) -> dict[str, StoredResponse]:
    """The stored answers to those of `keys` already answered, whatever body each retry carries."""
    keys = list(keys)
    if not keys:
        return {}
    rows = session.execute(STORED_ANSWERS, {"client_id": client.id, "keys": keys})
    return {row.key: StoredResponse(row.response_status, row.response_body, row.request_sha256) for row in rows}


def conflict() -> IdempotencyConflict:
    return IdempotencyConflict("this key was already used with a different request body")


def remember(session: Session, client: ApiClient | ApiCaller, key: str, request_sha256: str, status: int,
             body: dict) -> None:
    remember_all(session, client, [(key, request_sha256, status, body)])


def remember_all(session: Session, client: ApiClient | ApiCaller, answers: list[tuple[str, str, int, dict]]) -> None:
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


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict
    # True when this is the stored answer of an earlier attempt: the work was not done again.
    replayed: bool = False


def answer_once(session: Session, client: ApiClient | ApiCaller, key: str | None, request_sha256: str,
                work: Callable[[], tuple[int, dict]]) -> Answer:
    """Do `work` (which returns status and body) and commit it with its answer stored under `key`, or
    answer as before: the stored answer when an earlier attempt with this key and body committed, a
    conflict when its body differed. A DomainError of the work (and a lost race, after the last
    attempt) is raised when nothing was stored. `key` None answers without remembering."""
    for attempt in range(ATTEMPTS):
        try:
            status, body = work()
            if key is not None:
                remember(session, client, key, request_sha256, status, body)
            session.commit()
            return Answer(status, body)
        except (DBAPIError, DomainError) as error:
            session.rollback()
            if isinstance(error, DBAPIError) and not lost_race(error):
                raise
            stored = find_stored(session, client, {key: request_sha256}).get(key) if key is not None else None
            if isinstance(stored, DomainError):
                raise stored from None
            if stored is not None:
                return Answer(stored.status, stored.body, replayed=True)
            if isinstance(error, DomainError) or attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")
