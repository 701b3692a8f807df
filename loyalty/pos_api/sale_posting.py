"""Answering sales once (API.md "Idempotency"): the one path of `POST /transactions` and of
`POST /transactions/batch`.

A list of sale requests is answered in one DB transaction: those answered before are replayed (or
refused when their body changed), the rest go through `post_sales` together, and the answers are
stored with them. Single sales that arrive together in one worker process are posted as one such
list by a group commit (loyalty/group_commit.py), so at the till's busiest hour a sale costs a share
of a batch rather than a transaction of its own. A batch a client sends is posted as several such
lists (BATCH_PART), each committed before the next.

Each transaction first claims the idempotency keys of its sales (`claim_keys`), all in one statement,
in key order, before any other lock. The claim is what keeps a retry whose first attempt is still in
flight in another transaction (another group, another process) from failing its own group: it waits
for that transaction on the key, then replays its answer, or posts after all if the first attempt was
refused. Posting first and letting the unique key of `transactions` catch the twin would abort the
whole group's transaction (a COPY stops at its first duplicate), and its retry can meet the next
twin still in flight, as often as there are tills retrying. Under READ COMMITTED the wait on the key
settles it: a key not taken is committed, and visible to the next statement. On SQLite writers hold
the database's one write lock in turn, so a claim never waits and twins never overlap.
"""

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import marshmallow as ma
from flask import current_app
from sqlalchemy.exc import DBAPIError

from loyalty.auth.services import ApiCaller
from loyalty.clock import utcnow
from loyalty.errors import DomainError, IdempotencyConflict, ValidationFailed
from loyalty.extensions import db
from loyalty.group_commit import GroupCommit
from loyalty.metrics import count_sales
from loyalty.points.program import load_program
from loyalty.pos_api import schemas
from loyalty.pos_api.idempotency import (
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
from loyalty.pos_api.problems import problem_body
from loyalty.sales.services import SaleResult, post_sales

EXTENSION = "loyalty.sale_group_commit"
# Single sales queued at once in one process: bounds how long the last of them waits.
MAX_GROUP = 100
# A batch is posted and committed in parts of this many sales (API.md: each item stands on its own).
# A backfill of 1,000 sales then holds its members' row locks for one part's time, about 0.1 s, not
# the whole request's half second or more: a till's sale for one of those members waits that long,
# and with it every sale of its group commit (they are posted in one transaction). bench/ingest.py
# --mixed (tills at 32 connections beside one batch connection), alternating runs: whole batches
# gave the tills 179-180 sales/s at p99 646-659 ms, parts of 250 gave 291-379 sales/s at p99
# 238-308 ms, for a quarter less batch rate (989-1,145 against 1,313-1,458 sales/s). Smaller parts
# cost the batch more: the member, lot and qualifying-points reads are dearer per sale in smaller sets.
BATCH_PART = 250


@dataclass(frozen=True)
class SaleRequest:
    """One sale as a client sent it: its payload (as sent, for the idempotency hash), parsed or
    refused by the schema."""

    client: ApiCaller
    payload: object
    sale: dict | DomainError

    @classmethod
    def parse(cls, client: ApiCaller, payload: object) -> "SaleRequest":
        try:
            sale: dict | DomainError = schemas.sale_schema.load(payload)
        except ma.ValidationError as error:
            sale = ValidationFailed("the sale failed validation", errors=error.normalized_messages())
        return cls(client, payload, sale)

    @property
    def external_id(self) -> str | None:
        if isinstance(self.sale, dict):
            return self.sale["external_id"]
        external_id = self.payload.get("external_id") if isinstance(self.payload, dict) else None
        return external_id if isinstance(external_id, str) else None

    @property
    def key(self) -> str | None:
        """The idempotency key of a sale the schema accepted."""
        return "sale:" + self.sale["external_id"] if isinstance(self.sale, dict) else None

    @functools.cached_property
    def request_sha256(self) -> str:
        return fingerprint(self.payload)


@dataclass(frozen=True)
class SaleOutcome:
    """The answer to one sale: `transaction` (the response body) when it was posted or replayed,
    else `error`."""

    external_id: str | None
    status: int
    replayed: bool = False
    transaction: dict | None = None
    error: DomainError | None = None

    def as_batch_item(self) -> dict:
        item = {"external_id": self.external_id, "status": self.status, "replayed": self.replayed}
        if self.error is not None:
            item["error"] = problem_body(self.error)
        else:
            item["transaction"] = self.transaction
        return item


def post_sale_requests(requests: Sequence[SaleRequest]) -> list[SaleOutcome]:
    """Answer `requests` (of any clients) and commit, retrying a deadlock; one outcome each, in order."""
    for attempt in range(ATTEMPTS):
        try:
            claimed = claim_keys(db.session, _claims(requests))
            outcomes: dict[int, SaleOutcome] = {}
            for client_requests in _by_client(requests):
                client = client_requests[0][1].client
                answered = answer_sales(client, [sale_request for _, sale_request in client_requests], claimed)
                outcomes.update((index, outcome) for (index, _), outcome in zip(client_requests, answered, strict=True))
            db.session.commit()
            in_order = [outcomes[index] for index in range(len(requests))]
            _count_posted(in_order)
            return in_order
        except DBAPIError as error:
            db.session.rollback()
            if attempt == ATTEMPTS - 1 or not lost_race(error):
                raise
    raise AssertionError("unreachable")


def _count_posted(outcomes: list[SaleOutcome]) -> None:
    """Metrics of the sales this commit posted: the one place every single and batch sale passes after
    its commit (a replay was counted when it was first posted)."""
    posted = [outcome.transaction for outcome in outcomes if outcome.transaction is not None and not outcome.replayed]
    if posted:
        count_sales(len(posted), sum(body["points_earned"] for body in posted),
                    sum(body["points_redeemed"] for body in posted))


def post_sale_batch(requests: Sequence[SaleRequest]) -> list[SaleOutcome]:
    """Answer a batch's sales part by part (see BATCH_PART); one outcome each, in order."""
    outcomes: list[SaleOutcome | None] = [None] * len(requests)
    for part in _parts(requests):
        for index, outcome in zip(part, post_sale_requests([requests[index] for index in part]), strict=True):
            outcomes[index] = outcome
    return outcomes


def _parts(requests: Sequence[SaleRequest]) -> list[list[int]]:
    """Indexes of `requests` in parts of up to BATCH_PART, in order, except that the twins of a sale
    (the same external_id again) go in its part, where they are answered like retries of it."""
    parts: list[list[int]] = []
    part_of: dict[str, list[int]] = {}
    for index, sale_request in enumerate(requests):
        twin_part = part_of.get(sale_request.external_id)
        if twin_part is not None:
            twin_part.append(index)
            continue
        if not parts or len(parts[-1]) >= BATCH_PART:
            parts.append([])
        parts[-1].append(index)
        if sale_request.external_id is not None:
            part_of[sale_request.external_id] = parts[-1]
    return parts


def post_sale_together(sale_request: SaleRequest) -> SaleOutcome:
    """Post one sale with the others this process is posting at the same moment (see module doc)."""
    if not current_app.config["SALE_GROUP_COMMIT"]:
        return post_sale_requests([sale_request])[0]
    group = current_app.extensions.get(EXTENSION)
    if group is None:
        group = current_app.extensions.setdefault(EXTENSION, GroupCommit(post_sale_requests, max_batch=MAX_GROUP))
    return group.submit(sale_request)


def answer_sales(client: ApiCaller, requests: Sequence[SaleRequest],
                 claimed: dict[tuple[int, str], int]) -> list[SaleOutcome]:
    """One client's sales, answered in order (the caller commits): posted when this transaction
    claimed their key (`claimed`: the record id per (client id, key), see `claim_keys`), replayed (or
    refused when their body changed) otherwise. Twins within the list are answered like retries of
    the first."""
    keys = {index: sale_request.key for index, sale_request in enumerate(requests) if sale_request.key}
    first_of_key: dict[str, int] = {}
    to_post: list[int] = []
    for index, key in keys.items():
        if (client.id, key) in claimed and key not in first_of_key:
            first_of_key[key] = index
            to_post.append(index)
    # Each item is judged against the stored request itself: twins in one list may differ.
    stored: dict[str, StoredResponse | DomainError] = load_stored(
        db.session, client, {key for key in keys.values() if (client.id, key) not in claimed})
    posted = post_sales(db.session, load_program(db.session), client, [requests[i].sale for i in to_post], utcnow())
    outcomes: dict[int, SaleOutcome] = {}
    answers, refused = [], []
    for index, result in zip(to_post, posted, strict=True):
        key, sale_request = keys[index], requests[index]
        if isinstance(result, SaleResult):
            body = schemas.sale_response_schema.dump(result)
            outcomes[index] = SaleOutcome(sale_request.external_id, 201, transaction=body)
            answers.append((claimed[client.id, key], 201, body))
            stored[key] = StoredResponse(201, body, sale_request.request_sha256)
        else:
            outcomes[index] = SaleOutcome(sale_request.external_id, result.status, error=result)
            refused.append(claimed[client.id, key])
            # Its twins later in this list fail the same way, with the same problem.
            stored[key] = result
    answer_claims(db.session, answers)
    release_claims(db.session, refused)
    return [outcomes.get(index) or _earlier_answer(requests, index, stored, first_of_key)
            for index in range(len(requests))]


def _claims(requests: Sequence[SaleRequest]) -> list[tuple[int, str, str]]:
    """(client id, key, request hash) of each key in `requests`, the first request's hash for twins."""
    claims: dict[tuple[int, str], str] = {}
    for sale_request in requests:
        if sale_request.key is not None:
            claims.setdefault((sale_request.client.id, sale_request.key), sale_request.request_sha256)
    return [(client_id, key, request_sha256) for (client_id, key), request_sha256 in claims.items()]


def _earlier_answer(requests: Sequence[SaleRequest], index: int, stored: dict,
                    first_of_key: dict[str, int]) -> SaleOutcome:
    sale_request = requests[index]
    key = sale_request.key
    if key is None:  # refused by the schema
        return SaleOutcome(sale_request.external_id, sale_request.sale.status, error=sale_request.sale)
    earlier = stored[key]
    first = first_of_key.get(key)
    if first is not None and first != index and requests[first].request_sha256 != sale_request.request_sha256:
        earlier = IdempotencyConflict("this external_id appears earlier in the batch with a different body")
    elif isinstance(earlier, StoredResponse) and earlier.request_sha256 != sale_request.request_sha256:
        earlier = conflict()
    if isinstance(earlier, StoredResponse):
        return SaleOutcome(sale_request.external_id, earlier.status, replayed=True, transaction=earlier.body)
    return SaleOutcome(sale_request.external_id, earlier.status, error=earlier)


def _by_client(requests: Sequence[SaleRequest]) -> list[list[tuple[int, SaleRequest]]]:
    groups: dict[int, list[tuple[int, SaleRequest]]] = {}
    for index, sale_request in enumerate(requests):
        groups.setdefault(sale_request.client.id, []).append((index, sale_request))
    return list(groups.values())

