"""Answering sales once (API.md "Idempotency"): the one path of `POST /transactions` and of
`POST /transactions/batch`.

A list of sale requests is answered in one DB transaction: those answered before are replayed (or
refused when their body changed), the rest go through `post_sales` together, and the answers are
stored with them. Single sales that arrive together in one worker process are posted as one such
list by a group commit (loyalty/group_commit.py), so at the till's busiest hour a sale costs a share
of a batch rather than a transaction of its own. A batch a client sends is posted as several such
lists (BATCH_PART), each committed before the next.
"""

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
    conflict,
    fingerprint,
    load_stored,
    lost_race,
    remember_all,
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
    """Answer `requests` (of any clients) and commit, retrying a lost race; one outcome each, in order."""
    for attempt in range(ATTEMPTS):
        try:
            outcomes: dict[int, SaleOutcome] = {}
            for client_requests in _by_client(requests):
                client = client_requests[0][1].client
                answered = answer_sales(client, [sale_request for _, sale_request in client_requests],
                                        look_up_first=attempt > 0)
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


def answer_sales(client: ApiCaller, requests: Sequence[SaleRequest], *, look_up_first: bool) -> list[SaleOutcome]:
    """One client's sales, answered in order (the caller commits): replayed when answered before,
    posted otherwise. Twins within the list are answered like retries of the first.

    Optimistic unless `look_up_first`: a first attempt, by far the common case, posts without reading
    the stored answers. A retry of an answered sale then fails, on a unique key (the caller rolls back
    and calls again with `look_up_first`) or on the state its first attempt left (points spent, a
    coupon used: its stored answer is read then, see `_replay_lost_races`)."""
    prints = [fingerprint(sale_request.payload) for sale_request in requests]
    keys = {index: "sale:" + sale_request.sale["external_id"]
            for index, sale_request in enumerate(requests) if isinstance(sale_request.sale, dict)}
    # Each item is judged against the stored request itself: twins in one list may differ.
    stored: dict[str, StoredResponse | DomainError] = (
        load_stored(db.session, client, set(keys.values())) if look_up_first else {})
    first_of_key: dict[str, int] = {}
    to_post: list[int] = []
    for index, key in keys.items():
        if key not in stored and key not in first_of_key:
            first_of_key[key] = index
            to_post.append(index)
    posted = post_sales(db.session, load_program(db.session), client, [requests[i].sale for i in to_post], utcnow())
    lost = [keys[i] for i, result in zip(to_post, posted, strict=True) if isinstance(result, DomainError)]
    _replay_lost_races(client, lost, stored)
    outcomes: dict[int, SaleOutcome] = {}
    answers = []
    for index, result in zip(to_post, posted, strict=True):
        key = keys[index]
        if isinstance(result, SaleResult):
            body = schemas.sale_response_schema.dump(result)
            outcomes[index] = SaleOutcome(requests[index].external_id, 201, transaction=body)
            answers.append((key, prints[index], 201, body))
            stored[key] = StoredResponse(201, body, prints[index])
        elif key not in stored:
            outcomes[index] = SaleOutcome(requests[index].external_id, result.status, error=result)
            # Its twins later in this list fail the same way, with the same problem.
            stored[key] = result
    remember_all(db.session, client, answers)
    return [outcomes.get(index) or _earlier_answer(requests[index], keys.get(index), prints, index, stored,
                                                   first_of_key)
            for index in range(len(requests))]


def _replay_lost_races(client: ApiCaller, failed_keys: list[str], stored: dict) -> None:
    """A sale refused by the rules (say, points already spent) may be the retry of a sale answered
    before, or of a twin that committed while this one waited for the member's lock: that answer is
    now visible, and is the right one to replay. Read only when something failed."""
    stored.update(load_stored(db.session, client, failed_keys))


def _earlier_answer(sale_request: SaleRequest, key: str | None, prints: list[str], index: int, stored: dict,
                    first_of_key: dict[str, int]) -> SaleOutcome:
    if key is None:  # refused by the schema
        return SaleOutcome(sale_request.external_id, sale_request.sale.status, error=sale_request.sale)
    earlier = stored[key]
    if key in first_of_key and first_of_key[key] != index and prints[first_of_key[key]] != prints[index]:
        earlier = IdempotencyConflict("this external_id appears earlier in the batch with a different body")
    elif isinstance(earlier, StoredResponse) and earlier.request_sha256 != prints[index]:
        earlier = conflict()
    if isinstance(earlier, StoredResponse):
        return SaleOutcome(sale_request.external_id, earlier.status, replayed=True, transaction=earlier.body)
    return SaleOutcome(sale_request.external_id, earlier.status, error=earlier)


def _by_client(requests: Sequence[SaleRequest]) -> list[list[tuple[int, SaleRequest]]]:
    groups: dict[int, list[tuple[int, SaleRequest]]] = {}
    for index, sale_request in enumerate(requests):
        groups.setdefault(sale_request.client.id, []).append((index, sale_request))
    return list(groups.values())

