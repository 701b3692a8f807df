"""Answering sales once (docs/api.md "Idempotency"): the one path of `POST /transactions` and of
`POST /transactions/batch`, over loyalty.answer_once's key claims.

A list of sale submissions is answered in one DB transaction: those answered before are replayed
(or refused when their body changed), the rest go through `record_sales` together, and the answers are
stored with them. Single sales that arrive together in one worker process are answered as one such
list by a group commit (loyalty/group_commit.py), so at the till's busiest hour a sale costs a share
of a batch rather than a transaction of its own. A batch a client sends is answered as several such
lists (BATCH_PART), each committed before the next.

Each transaction first claims the idempotency keys of its sales (`claim_keys`), all in one statement,
in key order, before any other lock. The claim is what keeps a retry whose first attempt is still in
flight in another transaction (another group, another process) from failing its own group: it waits
for that transaction on the key, then replays its answer, or records the sale after all if the first
attempt was refused. Recording first and letting the unique key of `transactions` catch the twin
would abort the whole group's transaction (a COPY stops at its first duplicate), and its retry can
meet the next twin still in flight, as often as there are tills retrying. Under READ COMMITTED the wait on the key
settles it: a key not taken is committed, and visible to the next statement. On SQLite writers hold
the database's one write lock in turn, so a claim never waits and twins never overlap.
"""

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import marshmallow as ma
from flask import current_app
from sqlalchemy.exc import DBAPIError

from loyalty.answer_once import (
    ATTEMPTS,
    StoredResponse,
    answer_claims,
    claim_keys,
    conflict,
    fingerprint,
    load_stored,
    lost_race,
    release_claims,
)
from loyalty.auth.services import ApiCaller
from loyalty.clock import utcnow
from loyalty.errors import DomainError, IdempotencyConflict, ValidationFailed
from loyalty.extensions import db
from loyalty.group_commit import GroupCommit
from loyalty.metrics import count_sales
from loyalty.points.program import load_program
from loyalty.pos_api import schemas
from loyalty.pos_api.problems import problem_body
from loyalty.sales.services import RecordedSale, record_sales
from loyalty.sales.values import Sale

EXTENSION = "loyalty.sale_group_commit"
# Single sales queued at once in one process: bounds how long the last of them waits.
MAX_GROUP = 100
# A batch is recorded and committed in parts of this many sales (docs/api.md: each item stands on its own).
# A backfill then holds its members' row locks for one part's time, not the whole request's: a till's
# sale for one of those members waits that long, and with it every sale of its group commit (they are
# recorded in one transaction). Smaller parts cost the batch more: the member, lot and
# qualifying-points reads are dearer per sale in smaller sets. Measured with `python bench/ingest.py
# --mixed` (tills beside one batch connection) against whole batches; figures in bench/README.md.
BATCH_PART = 250


@dataclass(frozen=True)
class SaleSubmission:
    """One sale as a client sent it: its payload (as sent, for the idempotency hash), and the `Sale`
    the schema made of it or the schema's refusal."""

    client: ApiCaller
    payload: object
    sale: Sale | DomainError

    @classmethod
    def parse(cls, client: ApiCaller, payload: object) -> "SaleSubmission":
        try:
            sale: Sale | DomainError = schemas.sale_schema.load(payload)
        except ma.ValidationError as error:
            sale = ValidationFailed("the sale failed validation", errors=error.normalized_messages())
        return cls(client, payload, sale)

    @property
    def external_id(self) -> str | None:
        if isinstance(self.sale, Sale):
            return self.sale.external_id
        external_id = self.payload.get("external_id") if isinstance(self.payload, dict) else None
        return external_id if isinstance(external_id, str) else None

    @property
    def key(self) -> str | None:
        """The idempotency key of a sale the schema accepted."""
        return "sale:" + self.sale.external_id if isinstance(self.sale, Sale) else None

    @functools.cached_property
    def request_sha256(self) -> str:
        return fingerprint(self.payload)


@dataclass(frozen=True)
class SaleAnswer:
    """The answer to one submission: `body` (the sale as the API answers it) when the sale was
    recorded or replayed, else `error`."""

    external_id: str | None
    status: int
    replayed: bool = False
    body: dict | None = None
    error: DomainError | None = None

    def as_batch_item(self) -> dict:
        item = {"external_id": self.external_id, "status": self.status, "replayed": self.replayed}
        if self.error is not None:
            item["error"] = problem_body(self.error)
        else:
            item["transaction"] = self.body
        return item


def answer_submissions(requests: Sequence[SaleSubmission]) -> list[SaleAnswer]:
    """Answer `requests` (of any clients) and commit, retrying a deadlock; one answer each, in order."""
    for attempt in range(ATTEMPTS):
        try:
            claimed = claim_keys(db.session, _claims(requests))
            outcomes: dict[int, SaleAnswer] = {}
            for client_submissions in _by_client(requests):
                client = client_submissions[0][1].client
                answered = answer_client_submissions(
                    client, [submission for _, submission in client_submissions], claimed)
                outcomes.update((index, answer)
                                for (index, _), answer in zip(client_submissions, answered, strict=True))
            db.session.commit()
            in_order = [outcomes[index] for index in range(len(requests))]
            _count_recorded(in_order)
            return in_order
        except DBAPIError as error:
            db.session.rollback()
            if attempt == ATTEMPTS - 1 or not lost_race(error):
                raise
    raise AssertionError("unreachable")


def _count_recorded(outcomes: list[SaleAnswer]) -> None:
    """Metrics of the sales this commit recorded: the one place every single and batch sale passes
    after its commit (a replay was counted when it was first recorded)."""
    recorded = [outcome.body for outcome in outcomes if outcome.body is not None and not outcome.replayed]
    if recorded:
        count_sales(len(recorded), sum(body["points_earned"] for body in recorded),
                    sum(body["points_redeemed"] for body in recorded))


def answer_batch(requests: Sequence[SaleSubmission]) -> list[SaleAnswer]:
    """Answer a batch's sales part by part (see BATCH_PART); one answer each, in order."""
    outcomes: list[SaleAnswer | None] = [None] * len(requests)
    for part in _parts(requests):
        for index, outcome in zip(part, answer_submissions([requests[index] for index in part]), strict=True):
            outcomes[index] = outcome
    return outcomes


def _parts(requests: Sequence[SaleSubmission]) -> list[list[int]]:
    """Indexes of `requests` in parts of up to BATCH_PART, in order, except that the twins of a sale
    (the same external_id again) go in its part, where they are answered like retries of it."""
    parts: list[list[int]] = []
    part_of: dict[str, list[int]] = {}
    for index, submission in enumerate(requests):
        twin_part = part_of.get(submission.external_id)
        if twin_part is not None:
            twin_part.append(index)
            continue
        if not parts or len(parts[-1]) >= BATCH_PART:
            parts.append([])
        parts[-1].append(index)
        if submission.external_id is not None:
            part_of[submission.external_id] = parts[-1]
    return parts


def answer_in_group(submission: SaleSubmission) -> SaleAnswer:
    """Answer one sale with the others this process is answering at the same moment (see module doc)."""
    if not current_app.config["SALE_GROUP_COMMIT"]:
        return answer_submissions([submission])[0]
    group = current_app.extensions.get(EXTENSION)
    if group is None:
        group = current_app.extensions.setdefault(EXTENSION, GroupCommit(answer_submissions, max_batch=MAX_GROUP))
    return group.submit(submission)


def answer_client_submissions(client: ApiCaller, requests: Sequence[SaleSubmission],
                              claimed: dict[tuple[int, str], int]) -> list[SaleAnswer]:
    """One client's sales, answered in order (the caller commits): recorded when this transaction
    claimed their key (`claimed`: the record id per (client id, key), see `claim_keys`), replayed (or
    refused when their body changed) otherwise. Twins within the list are answered like retries of
    the first."""
    keys = {index: submission.key for index, submission in enumerate(requests) if submission.key}
    first_of_key: dict[str, int] = {}
    to_record: list[int] = []
    for index, key in keys.items():
        if (client.id, key) in claimed and key not in first_of_key:
            first_of_key[key] = index
            to_record.append(index)
    # Each item is judged against the stored request itself: twins in one list may differ.
    stored: dict[str, StoredResponse | DomainError] = load_stored(
        db.session, client, {key for key in keys.values() if (client.id, key) not in claimed})
    recorded = record_sales(db.session, load_program(db.session), client, [requests[i].sale for i in to_record],
                            utcnow())
    outcomes: dict[int, SaleAnswer] = {}
    answers, refused = [], []
    for index, result in zip(to_record, recorded, strict=True):
        key, submission = keys[index], requests[index]
        if isinstance(result, RecordedSale):
            body = schemas.sale_response_schema.dump(result)
            outcomes[index] = SaleAnswer(submission.external_id, 201, body=body)
            answers.append((claimed[client.id, key], 201, body))
            stored[key] = StoredResponse(201, body, submission.request_sha256)
        else:
            outcomes[index] = SaleAnswer(submission.external_id, result.status, error=result)
            refused.append(claimed[client.id, key])
            # Its twins later in this list fail the same way, with the same problem.
            stored[key] = result
    answer_claims(db.session, answers)
    release_claims(db.session, refused)
    return [outcomes.get(index) or _earlier_answer(requests, index, stored, first_of_key)
            for index in range(len(requests))]


def _claims(requests: Sequence[SaleSubmission]) -> list[tuple[int, str, str]]:
    """(client id, key, request hash) of each key in `requests`, the first request's hash for twins."""
    claims: dict[tuple[int, str], str] = {}
    for submission in requests:
        if submission.key is not None:
            claims.setdefault((submission.client.id, submission.key), submission.request_sha256)
    return [(client_id, key, request_sha256) for (client_id, key), request_sha256 in claims.items()]


def _earlier_answer(requests: Sequence[SaleSubmission], index: int, stored: dict,
                    first_of_key: dict[str, int]) -> SaleAnswer:
    submission = requests[index]
    key = submission.key
    if key is None:  # refused by the schema
        return SaleAnswer(submission.external_id, submission.sale.status, error=submission.sale)
    earlier = stored[key]
    first = first_of_key.get(key)
    if first is not None and first != index and requests[first].request_sha256 != submission.request_sha256:
        earlier = IdempotencyConflict("this external_id appears earlier in the batch with a different body")
    elif isinstance(earlier, StoredResponse) and earlier.request_sha256 != submission.request_sha256:
        earlier = conflict()
    if isinstance(earlier, StoredResponse):
        return SaleAnswer(submission.external_id, earlier.status, replayed=True, body=earlier.body)
    return SaleAnswer(submission.external_id, earlier.status, error=earlier)


def _by_client(requests: Sequence[SaleSubmission]) -> list[list[tuple[int, SaleSubmission]]]:
    groups: dict[int, list[tuple[int, SaleSubmission]]] = {}
    for index, submission in enumerate(requests):
        groups.setdefault(submission.client.id, []).append((index, submission))
    return list(groups.values())

