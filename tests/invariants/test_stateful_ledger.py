"""The points ledger as a state machine (issue 2): earn, redeem, refund, expire and replay through the
real HTTP API and the real expiry job, against a plain Python model of what each member should hold.

After every step the docs/architecture.md invariants 1-5 and 7 are checked: `verify_ledger` is ok, the API's
balance, available points, tier and expiry dates equal the model's, every lot matches the model's lot,
ledger rows seen before are unchanged, and nothing is ever available below zero.

The model is written from docs/api.md and docs/architecture.md ("Defaults a fresh install holds"), not from the code:
earning floor(floor(amount / 100) x multiplier of the tier held before the sale), lots expiring at the
UTC midnight after 365 days, redemption and expiry oldest-expiry first, refunds reversing and restoring
in proportion (cumulative, floor), reversals taking the sale's own lot first and then any lot, a
negative balance paid off by the next credit.
"""

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from loyalty.extensions import db
from loyalty.members.models import Member
from loyalty.points import tasks
from loyalty.points.models import PointsEntry, PointsLot
from loyalty.points.services import verify_ledger
from tests.support.clock import DEFAULT_NOW

# docs/architecture.md "Defaults a fresh install holds".
TIERS = [("BRONZE", 0, 100), ("SILVER", 1_000, 125), ("GOLD", 5_000, 150)]  # code, threshold, multiplier %
LOT_LIFETIME = timedelta(days=365)
TIER_WINDOW = timedelta(days=365)
# Program time the machine may move forward in one example: several lot lifetimes, not centuries.
MAX_TRAVEL = timedelta(days=4 * 365)
CHINA = timezone(timedelta(hours=8))

_runs = itertools.count(1)


def problem_slug(response) -> str:
    return response.get_json()["type"].rsplit("/", 1)[-1]


def wire_time(value: datetime) -> str:
    """What a till in China sends: RFC 3339 with its own offset."""
    return value.astimezone(CHINA).isoformat()


def z_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class ModelLot:
    seq: int
    points: int
    remaining: int
    available_at: datetime
    expires_at: datetime
    sale_id: str | None  # the sale whose earning created it; None for restored points


@dataclass
class ModelMember:
    member_no: str
    balance: int = 0
    tier: int = 0  # index into TIERS
    lots: list[ModelLot] = field(default_factory=list)
    # (occurred_at, qualifying points) of every ledger entry that moved qualifying points.
    qualifying: list[tuple[datetime, int]] = field(default_factory=list)

    def open_lots(self) -> list[ModelLot]:
        return sorted((lot for lot in self.lots if lot.remaining > 0), key=lambda lot: (lot.expires_at, lot.seq))

    def available(self, now: datetime) -> int:
        return sum(lot.remaining for lot in self.open_lots() if lot.available_at <= now < lot.expires_at)

    def pending(self, now: datetime) -> int:
        return sum(lot.remaining for lot in self.open_lots() if now < lot.available_at and now < lot.expires_at)

    def expiring(self, now: datetime) -> list[dict]:
        by_date: dict[datetime, int] = {}
        for lot in self.open_lots():
            if lot.expires_at > now:
                by_date[lot.expires_at] = by_date.get(lot.expires_at, 0) + lot.remaining
        return [{"points": points, "expires_at": z_time(at)} for at, points in sorted(by_date.items())[:3]]

    def qualifying_since(self, since: datetime) -> int:
        return sum(points for occurred_at, points in self.qualifying if occurred_at > since)


@dataclass
class ModelSale:
    external_id: str
    member: ModelMember | None
    amount: int
    earned: int
    base: int
    redeemed: int
    body: dict
    response: dict
    # Expiry dates of the lots the redemption took points from (restored points keep the latest).
    spent_expiries: list[datetime] = field(default_factory=list)
    refunded: int = 0
    reversed: int = 0
    qualifying_reversed: int = 0
    restored: int = 0


@dataclass
class ModelRefund:
    sale: ModelSale
    body: dict
    response: dict


def lot_expiry(occurred_at: datetime) -> datetime:
    """The UTC midnight at or after the end of the lot's lifetime."""
    end = occurred_at.astimezone(UTC) + LOT_LIFETIME
    midnight = end.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight if midnight == end else midnight + timedelta(days=1)


class LedgerMachine(RuleBasedStateMachine):
    """One example: fresh members, a fresh API key and unique external ids, the clock back at the start.
    The database is shared with earlier examples (fixtures reset it per test function only), which
    the ledger-wide `verify_ledger` check then also covers."""

    def __init__(self, app, clock, factory):
        super().__init__()
        self.app = app
        self.clock = clock
        self.run = next(_runs)
        self.ids = itertools.count(1)
        self.lot_seq = itertools.count(1)
        clock.set(DEFAULT_NOW)
        self.pos = factory.api_client(name=f"till-{self.run}")
        self.members: list[ModelMember] = []
        self.sales: list[ModelSale] = []
        self.refunds: list[ModelRefund] = []
        self.seen_entries: dict[int, tuple] = {}

    # --- helpers ------------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        return self.clock()

    def next_id(self, prefix: str) -> str:
        return f"{prefix}-{self.run}-{next(self.ids)}"

    def enrol(self) -> ModelMember:
        number = next(self.ids)
        response = self.pos.post("/members", json={"name": f"Member {self.run}-{number}",
                                                   "email": f"m{self.run}-{number}@example.com"})
        assert response.status_code == 201, response.get_json()
        member = ModelMember(member_no=response.get_json()["member_no"])
        self.members.append(member)
        return member

    def new_lot(self, member: ModelMember, points: int, *, available_at, expires_at, sale_id) -> None:
        """Credit: a negative balance is paid off out of the new lot first."""
        debt = max(0, -member.balance)
        member.balance += points
        member.lots.append(ModelLot(next(self.lot_seq), points, points - min(debt, points), available_at,
                                    expires_at, sale_id))

    @staticmethod
    def take(lots: list[ModelLot], points: int) -> list[ModelLot]:
        """Consume `points` from `lots` in order; returns the lots touched."""
        touched = []
        for lot in lots:
            if points == 0:
                break
            part = min(lot.remaining, points)
            if part:
                lot.remaining -= part
                points -= part
                touched.append(lot)
        return touched

    def expect_sale(self, member: ModelMember | None, amount: int, redeem: int, occurred_at: datetime) -> dict:
        """Take a sale's redemption in the model; returns what it earns and the expiry dates it spent,
        or {"refused": slug} when the API must refuse the sale (and the model stays as it was)."""
        if redeem and member is None:
            return {"refused": "validation-error"}
        if member is None:
            return {"earned": 0, "base": 0, "spent": []}
        if redeem > member.available(self.now):
            return {"refused": "insufficient-points"}
        usable = [lot for lot in member.open_lots() if lot.available_at <= self.now < lot.expires_at]
        spent = [lot.expires_at for lot in self.take(usable, redeem)]
        member.balance -= redeem
        base = amount // 100
        earned = base * TIERS[member.tier][2] // 100
        return {"earned": earned, "base": base, "spent": spent}

    def credit_sale(self, member: ModelMember, external_id: str, expected: dict, occurred_at: datetime) -> None:
        if expected["earned"] or expected["base"]:
            self.new_lot(member, expected["earned"], available_at=occurred_at, expires_at=lot_expiry(occurred_at),
                         sale_id=external_id)
            member.qualifying.append((occurred_at, expected["base"]))
        window_start = self.now - TIER_WINDOW
        if occurred_at > window_start:
            qualifying = member.qualifying_since(window_start)
            # Reversals inside the window can outweigh earnings that have left it: below zero is the entry tier.
            reached = max((index for index, (_, threshold, _) in enumerate(TIERS) if qualifying >= threshold),
                          default=0)
            member.tier = max(member.tier, reached)

    def post_sale(self, member: ModelMember | None, amount: int, redeem: int, backdate_days: int = 0):
        occurred_at = self.now - timedelta(days=backdate_days)
        external_id = self.next_id("S")
        body = {"external_id": external_id, "occurred_at": wire_time(occurred_at), "currency": "CNY",
                "amount": amount}
        if member is not None:
            body["member"] = member.member_no
        if redeem:
            body["points_redeemed"] = redeem
        expected = self.expect_sale(member, amount, redeem, occurred_at)
        response = self.pos.post("/transactions", json=body)
        answer = response.get_json()
        if "refused" in expected:
            assert response.status_code == 422, answer
            assert problem_slug(response) == expected["refused"], answer
            return
        assert response.status_code == 201, answer
        assert "Idempotent-Replayed" not in response.headers
        if member is not None:
            self.credit_sale(member, external_id, expected, occurred_at)
        assert answer["points_earned"] == expected["earned"], (answer, expected)
        assert answer["points_redeemed"] == redeem
        assert answer["occurred_at"] == z_time(occurred_at)
        if member is not None:
            assert answer["member"]["points"]["balance"] == member.balance
            assert answer["member"]["points"]["available"] == member.available(self.now)
            assert answer["member"]["tier"]["code"] == TIERS[member.tier][0]
        self.sales.append(ModelSale(external_id, member, amount, expected["earned"], expected["base"], redeem,
                                    body, answer, spent_expiries=expected["spent"]))

    def post_refund(self, sale: ModelSale, amount: int) -> None:
        body = {"external_id": self.next_id("R"), "amount": amount}
        refunded = sale.refunded + amount
        response = self.pos.post(f"/transactions/{sale.external_id}/refunds", json=body)
        answer = response.get_json()
        if refunded > sale.amount:
            assert response.status_code == 422, answer
            assert problem_slug(response) == "refund-exceeds-sale", answer
            return
        assert response.status_code == 201, answer
        reversed_now = sale.earned * refunded // sale.amount - sale.reversed
        qualifying_now = sale.base * refunded // sale.amount - sale.qualifying_reversed
        restored_now = sale.redeemed * refunded // sale.amount - sale.restored
        sale.refunded = refunded
        sale.reversed += reversed_now
        sale.qualifying_reversed += qualifying_now
        sale.restored += restored_now
        member = sale.member
        if member is not None:
            if reversed_now or qualifying_now:
                own = [lot for lot in member.open_lots() if lot.sale_id == sale.external_id]
                others = [lot for lot in member.open_lots() if lot.sale_id != sale.external_id]
                self.take(own + others, reversed_now)
                member.balance -= reversed_now
                member.qualifying.append((self.now, -qualifying_now))
            if restored_now:
                self.new_lot(member, restored_now, available_at=self.now, expires_at=max(sale.spent_expiries),
                             sale_id=None)
        assert answer["points_reversed"] == reversed_now, (answer, sale)
        assert answer["points_restored"] == restored_now, (answer, sale)
        assert answer["transaction_external_id"] == sale.external_id
        if member is not None:
            assert answer["member"]["points"]["balance"] == member.balance
        self.refunds.append(ModelRefund(sale, body, answer))
        # Invariant 4 as the API shows it: the sale's cumulative refund figures.
        shown = self.pos.get(f"/transactions/{sale.external_id}").get_json()
        assert (shown["refunded_amount"], shown["points_reversed"], shown["points_restored"]) == (
            sale.refunded, sale.reversed, sale.restored)
        assert shown["refunded_amount"] <= shown["amount"] and shown["points_reversed"] <= shown["points_earned"]
        assert sum(item["amount"] for item in shown["refunds"]) == sale.refunded

    # --- rules --------------------------------------------------------------------------------

    @initialize()
    def first_member(self):
        self.enrol()

    @precondition(lambda self: len(self.members) < 3)
    @rule()
    def another_member(self):
        self.enrol()

    @rule(data=st.data(), amount=st.one_of(st.integers(0, 5_000), st.integers(0, 300_000)),
          backdate_days=st.sampled_from([0, 0, 0, 1, 200, 364, 366]))
    def earn(self, data, amount, backdate_days):
        self.post_sale(data.draw(st.sampled_from(self.members), "member"), amount, 0, backdate_days)

    @rule(data=st.data(), amount=st.integers(0, 20_000), overdraw=st.booleans())
    def redeem(self, data, amount, overdraw):
        member = data.draw(st.sampled_from(self.members), "member")
        available = member.available(self.now)
        if overdraw or not available:
            points = data.draw(st.integers(available + 1, available + 1_000), "points")
        else:
            points = data.draw(st.integers(1, available), "points")
        self.post_sale(member, amount, points)

    @rule(amount=st.integers(0, 50_000), redeem=st.sampled_from([0, 0, 0, 100]))
    def anonymous_sale(self, amount, redeem):
        self.post_sale(None, amount, redeem)

    def refundable(self) -> bool:
        return any(sale.refunded < sale.amount for sale in self.sales)

    @precondition(refundable)
    @rule(data=st.data())
    def refund_partial(self, data):
        sale = data.draw(st.sampled_from([sale for sale in self.sales if sale.refunded < sale.amount]), "sale")
        left = sale.amount - sale.refunded
        self.post_refund(sale, data.draw(st.integers(1, left), "amount"))

    @precondition(refundable)
    @rule(data=st.data())
    def refund_rest(self, data):
        sale = data.draw(st.sampled_from([sale for sale in self.sales if sale.refunded < sale.amount]), "sale")
        self.post_refund(sale, sale.amount - sale.refunded)

    @precondition(lambda self: self.sales)
    @rule(data=st.data(), excess=st.integers(1, 10_000))
    def refund_too_much(self, data, excess):
        sale = data.draw(st.sampled_from(self.sales), "sale")
        self.post_refund(sale, sale.amount - sale.refunded + excess)

    @precondition(lambda self: self.now - DEFAULT_NOW < MAX_TRAVEL)
    @rule(days=st.sampled_from([1, 30, 180, 364, 365, 366, 400]))
    def advance_clock(self, days):
        """Time passes; lots past expiry stop being available but hold their points until the job runs."""
        self.clock.advance(days=days)

    @rule()
    def expire(self):
        with self.app.app_context():
            tasks.expire_lots()
            db.session.remove()
        for member in self.members:
            for lot in member.lots:
                if lot.remaining and lot.expires_at <= self.now:
                    member.balance -= lot.remaining
                    lot.remaining = 0

    @precondition(lambda self: self.sales)
    @rule(data=st.data())
    def replay_sale(self, data):
        sale = data.draw(st.sampled_from(self.sales), "sale")
        response = self.pos.post("/transactions", json=sale.body)
        assert response.status_code == 201, response.get_json()
        assert response.headers.get("Idempotent-Replayed") == "true"
        assert response.get_json() == sale.response

    @precondition(lambda self: self.sales)
    @rule(data=st.data(), change=st.sampled_from(["amount", "points_redeemed", "member", "occurred_at"]))
    def conflicting_sale(self, data, change):
        sale = data.draw(st.sampled_from(self.sales), "sale")
        body = dict(sale.body)
        if change == "amount":
            body["amount"] += 1
        elif change == "points_redeemed":
            body["points_redeemed"] = body.get("points_redeemed", 0) + 1
        elif change == "member":
            if body.pop("member", None) is None:
                body["member"] = self.members[0].member_no
        else:
            body["occurred_at"] = wire_time(datetime.fromisoformat(body["occurred_at"]) - timedelta(seconds=1))
        response = self.pos.post("/transactions", json=body)
        assert response.status_code == 409, response.get_json()
        assert problem_slug(response) == "idempotency-conflict"

    @precondition(lambda self: self.refunds)
    @rule(data=st.data())
    def replay_refund(self, data):
        refund = data.draw(st.sampled_from(self.refunds), "refund")
        response = self.pos.post(f"/transactions/{refund.sale.external_id}/refunds", json=refund.body)
        assert response.status_code == 201, response.get_json()
        assert response.headers.get("Idempotent-Replayed") == "true"
        assert response.get_json() == refund.response

    @precondition(lambda self: self.refunds)
    @rule(data=st.data(), other_sale=st.booleans())
    def conflicting_refund(self, data, other_sale):
        refund = data.draw(st.sampled_from(self.refunds), "refund")
        if other_sale:
            sale_id = data.draw(st.sampled_from(self.sales), "other sale").external_id
            body = refund.body
            if sale_id == refund.sale.external_id:
                body = {**body, "amount": body["amount"] + 1}
        else:
            sale_id, body = refund.sale.external_id, {**refund.body, "amount": refund.body["amount"] + 1}
        response = self.pos.post(f"/transactions/{sale_id}/refunds", json=body)
        assert response.status_code == 409, response.get_json()
        assert problem_slug(response) == "idempotency-conflict"

    # --- invariants ---------------------------------------------------------------------------

    @invariant()
    def ledger_holds(self):
        with self.app.app_context():
            try:
                report = verify_ledger(db.session)
                assert report.ok, report.problems
                self.check_rows(db.session)
            finally:
                db.session.remove()
        for member in self.members:
            shown = self.pos.get(f"/members/{member.member_no}").get_json()
            points = shown["points"]
            assert points["balance"] == member.balance, (member.member_no, points, member)
            assert points["available"] == member.available(self.now), (member.member_no, points, member)
            assert points["available"] >= 0
            assert points["pending"] == member.pending(self.now)
            assert points["expiring"] == member.expiring(self.now)
            assert shown["tier"]["code"] == TIERS[member.tier][0]

    def check_rows(self, session) -> None:
        """Lots as the model has them; ledger rows seen before unchanged and still there (invariant 3)."""
        numbers = [member.member_no for member in self.members]
        by_no = {member.member_no: member for member in self.members}
        lots: dict[str, list] = {number: [] for number in numbers}
        for member_no, points, remaining, available_at, expires_at in session.execute(
            sa.select(Member.member_no, PointsLot.points, PointsLot.remaining, PointsLot.available_at,
                      PointsLot.expires_at)
            .join(Member, Member.id == PointsLot.member_id).where(Member.member_no.in_(numbers))
            .order_by(PointsLot.id)
        ):
            lots[member_no].append((points, remaining, available_at, expires_at))
        for member_no, rows in lots.items():
            expected = [(lot.points, lot.remaining, lot.available_at, lot.expires_at)
                        for lot in by_no[member_no].lots if lot.points > 0]
            assert rows == expected, (member_no, rows, expected)
        entries = {
            entry.id: (entry.member_id, entry.kind, entry.points, entry.qualifying_points, entry.occurred_at,
                       entry.transaction_id, entry.reason)
            for entry in session.scalars(
                sa.select(PointsEntry).join(Member, Member.id == PointsEntry.member_id)
                .where(Member.member_no.in_(numbers))
            )
        }
        for entry_id, row in self.seen_entries.items():
            assert entries.get(entry_id) == row, f"ledger entry {entry_id} changed or vanished"
        self.seen_entries = entries


def test_ledger_state_machine(app, clock, factory):
    """Random sequences of sales, redemptions, refunds, expiry runs and replays keep the ledger whole."""
    run_state_machine_as_test(
        lambda: LedgerMachine(app, clock, factory),
        settings=settings(max_examples=40, stateful_step_count=30, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]),
    )
