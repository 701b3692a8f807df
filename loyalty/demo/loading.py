"""Loading the demo's plan through the services the POS API uses: stores, staff and keys, members,
then the sales and refunds in time order, with the tills' view of each member's points."""

import heapq
import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import click
import sqlalchemy as sa
from sqlalchemy.orm import Session

from loyalty.auth.models import ApiClient, StaffUser, Store
from loyalty.auth.services import create_api_client, create_staff_user
from loyalty.clock import utcnow
from loyalty.demo.planning import STORES, ZONE, MemberPlan, Plan, SalePlan, plan_demo
from loyalty.errors import DomainError
from loyalty.members.models import Member
from loyalty.members.services import enrol_member
from loyalty.points.earning import SaleLine, compute_earning
from loyalty.points.models import PointsEntry, Tier
from loyalty.points.program import Program, TierCopy, load_program
from loyalty.sales.models import Transaction
from loyalty.sales.services import MemberSnapshot, record_refund, record_sales
from loyalty.sales.values import BasketLine, Refund, Sale

DEMO_PASSWORD = "loyalty-demo-2026"
BATCH_SIZE = 500
STAFF = (("admin@demo.loyalty", "admin", None), ("marketer@demo.loyalty", "marketer", None),
         ("cashier@demo.loyalty", "cashier", "S001"))


class DemoRefused(click.ClickException):
    """The database is not a fresh one the demo can load into (click shows it as an error, exit 1)."""


def load_demo(session: Session, *, members: int = 2000, days: int = 365, seed: int = 7) -> list[str]:
    """Load the demo and return a summary for the person at the terminal."""
    started = time.monotonic()
    program = _fresh_program(session)
    now = utcnow()
    plan = plan_demo(now, members=members, days=days, seed=seed)
    stores, clients, keys = _create_stores_and_clients(session)
    _create_staff(session, stores)
    session.commit()
    member_nos = _enrol(session, program, plan.members, stores)
    Poster(session, program, plan, member_nos, clients, now, random.Random(f"{seed}:post")).run()
    return _summary(session, plan, keys["S001"], time.monotonic() - started, seed)


def _fresh_program(session: Session) -> Program:
    """The program of a migrated database that holds nothing else yet; DemoRefused for any other."""
    try:
        program = load_program(session)
    except RuntimeError as error:
        raise DemoRefused(str(error)) from error
    except (sa.exc.OperationalError, sa.exc.ProgrammingError) as error:
        session.rollback()
        raise DemoRefused("the database has no schema yet: run `loyalty db upgrade` first") from error
    held = {name: session.scalar(sa.select(sa.func.count()).select_from(model))
            for name, model in (("stores", Store), ("staff users", StaffUser), ("API clients", ApiClient),
                                ("members", Member), ("transactions", Transaction))}
    if any(held.values()):
        found = ", ".join(f"{count} {name}" for name, count in held.items() if count)
        raise DemoRefused(f"the database already holds data ({found}); the demo loads only into a fresh "
                          "database: point LOYALTY_SQLALCHEMY_DATABASE_URI at a new one and run `loyalty db upgrade`")
    return program


# --- loading: through the services, as POS systems would ------------------------------------------

def _create_stores_and_clients(session: Session) -> tuple[dict[str, Store], dict[str, ApiClient], dict[str, str]]:
    stores, clients, keys = {}, {}, {}
    for demo_store in STORES:
        store = Store(code=demo_store.code, name=demo_store.name, timezone=str(ZONE))
        session.add(store)
        session.flush()
        clients[store.code], keys[store.code] = create_api_client(
            session, name=f"{demo_store.name} {'web shop' if demo_store.channel == 'online' else 'POS'}",
            store=store, scope="pos")
        stores[store.code] = store
    return stores, clients, keys


def _create_staff(session: Session, stores: dict[str, Store]) -> None:
    for email, role, store_code in STAFF:
        create_staff_user(session, email=email, role=role, password=DEMO_PASSWORD,
                          store=stores[store_code] if store_code else None)


def _enrol(session: Session, program: Program, people: list[MemberPlan], stores: dict[str, Store]) -> list[str]:
    store_ids = {code: store.id for code, store in stores.items()}
    member_nos = []
    for index, person in enumerate(people, start=1):
        member = enrol_member(
            session, program, name=person.name, now=person.enrolled_at, email=person.email, phone=person.phone,
            birthday=person.birthday, home_store=session.get(Store, store_ids[person.home.code]),
            email_marketing=person.email_marketing, sms_marketing=person.sms_marketing,
        )
        member_nos.append(member.member_no)
        if index % BATCH_SIZE == 0:
            session.commit()
    session.commit()
    return member_nos


@dataclass
class PostedSale:
    """What a refund needs to know of a sale already posted."""

    client: ApiClient
    amount: int
    subtotal: int
    lines: list[dict]
    refunded: int = 0
    refund_count: int = 0


@dataclass
class Purse:
    """A member's points as the services last reported them, moved forward by the sales planned since,
    so a batch never asks to redeem more than the member will have when the sale is posted."""

    tier: TierCopy
    available: int = 0
    # Points owed after a refund reversed points already spent: the next earnings settle it first.
    debt: int = 0

    def update(self, snapshot: MemberSnapshot) -> None:
        self.tier, self.available = snapshot.tier, snapshot.points.available
        self.debt = max(0, -snapshot.points.balance)


class Poster:
    """Posts the planned sales in time order, deciding redemptions from what each member can spend."""

    def __init__(self, session, program, plan, member_nos, clients, now, rng):
        self.session, self.program, self.plan, self.now, self.rng = session, program, plan, now, rng
        self.member_nos, self.clients = member_nos, clients
        self.index_by_no = {number: index for index, number in enumerate(member_nos)}
        self.purses = [Purse(tier=program.entry_tier) for _ in member_nos]
        self.posted: dict[str, PostedSale] = {}
        # (occurred_at, order, sale external id, kind) of refunds whose time has not come yet.
        self.due_refunds: list[tuple[datetime, int, str, str]] = []
        self.redeem_unit = program.settings.redeem_points
        self.redeem_value = program.settings.redeem_value_minor

    def run(self) -> None:
        sales = self.plan.sales
        for offset in range(0, len(sales), BATCH_SIZE):
            batch = sales[offset:offset + BATCH_SIZE]
            for store in STORES:
                self._post([sale for sale in batch if sale.store is store], self.clients[store.code])
            self._refund_until(batch[-1].occurred_at)
            self.session.commit()
        self._refund_until(self.now)
        self.session.commit()

    def _post(self, sales: list[SalePlan], client: ApiClient) -> None:
        if not sales:
            return
        payloads = [self._payload(sale) for sale in sales]
        results = record_sales(self.session, self.program, client, [_as_sale(payload) for payload in payloads],
                               self.now)
        for sale, payload, result in zip(sales, payloads, results, strict=True):
            if isinstance(result, DomainError):
                # The demo asks only for what the rules allow: a refusal means the two disagree.
                raise RuntimeError(f"demo sale {sale.external_id} refused: {result.detail} {result.errors or ''}")
            if result.member is not None:
                self.purses[sale.member].update(result.member)
            self.posted[sale.external_id] = PostedSale(client=client, amount=payload["amount"],
                                                       subtotal=payload["subtotal"], lines=payload["lines"])
            for order, (occurred_at, kind) in enumerate(sale.refunds):
                heapq.heappush(self.due_refunds, (occurred_at, order, sale.external_id, kind))

    def _payload(self, sale: SalePlan) -> dict:
        payload = {
            "external_id": sale.external_id, "store_code": sale.store.code, "channel": sale.store.channel,
            "occurred_at": sale.occurred_at, "currency": self.program.settings.currency, "amount": sale.subtotal,
            "subtotal": sale.subtotal, "lines": sale.lines, "coupons": [], "points_redeemed": 0,
        }
        if sale.member is not None:
            payload["member"] = self.member_nos[sale.member]
            payload["points_redeemed"] = redeemed = self._points_to_redeem(sale)
            payload["amount"] -= redeemed * self.redeem_value // self.redeem_unit
            self._expect_earning(self.purses[sale.member], payload)
        return payload

    def _points_to_redeem(self, sale: SalePlan) -> int:
        """Some members spend points at the till: whole redemption units, at most half the basket."""
        purse, person = self.purses[sale.member], self.plan.members[sale.member]
        if purse.available < 10 * self.redeem_unit or self.rng.random() >= person.redeemer * 0.5:
            return 0
        half_basket = sale.subtotal // 2 * self.redeem_unit // self.redeem_value
        wanted = self.rng.choice([purse.available, purse.available // 2, 10 * self.redeem_unit, 50 * self.redeem_unit])
        points = min(wanted, purse.available, half_basket) // self.redeem_unit * self.redeem_unit
        if points < 5 * self.redeem_unit:
            return 0
        purse.available -= points
        return points

    def _expect_earning(self, purse: Purse, payload: dict) -> None:
        """What the sale will add to the member's redeemable points, reckoned with the tier they held
        when last reported: exact, or short if they move up a tier within the batch."""
        earning = compute_earning(
            self.program.settings, purse.tier, self.program.earning_rules, amount=payload["amount"],
            subtotal=payload["subtotal"], occurred_at=payload["occurred_at"],
            lines=[SaleLine(line["sku"], line["category"], line["amount"]) for line in payload["lines"]],
        )
        settled = min(purse.debt, earning.points)
        purse.debt -= settled
        available_at, expires_at = self.program.lot_dates(payload["occurred_at"])
        if available_at <= self.now < expires_at:
            purse.available += earning.points - settled

    def _refund_until(self, until: datetime) -> None:
        while self.due_refunds and self.due_refunds[0][0] <= until:
            occurred_at, _, sale_id, kind = heapq.heappop(self.due_refunds)
            posted = self.posted[sale_id]
            amount, lines = self._refund_amount(posted, kind)
            if amount <= 0:
                continue
            posted.refund_count += 1
            refund = Refund(external_id=f"{sale_id}-R{posted.refund_count}", amount=amount, occurred_at=occurred_at,
                            lines=tuple(BasketLine(**line) for line in lines))
            result = record_refund(self.session, self.program, posted.client, sale_id, refund, self.now)
            posted.refunded += amount
            if result.member is not None:
                self.purses[self.index_by_no[result.member.member.member_no]].update(result.member)

    def _refund_amount(self, posted: PostedSale, kind: str) -> tuple[int, list[dict]]:
        """Money back: everything left, or one returned line's paid share (a price adjustment when the
        basket had a single line)."""
        left = posted.amount - posted.refunded
        if kind != "partial":
            return left, []
        if len(posted.lines) > 1:
            line = self.rng.choice(posted.lines)
            return min(left - 1, line["amount"] * posted.amount // posted.subtotal), [line]
        return left * self.rng.choice([20, 30, 50]) // 100, []


# --- summary ---------------------------------------------------------------------------------------

def _summary(session: Session, plan: Plan, pos_key: str, seconds: float, seed: int) -> list[str]:
    sale, refund = Transaction.kind == "sale", Transaction.kind == "refund"
    refunded = sa.and_(sale, Transaction.refunded_amount > 0)
    sales, anonymous, redeeming, refunds, fully, partly = session.execute(sa.select(
        _count_where(sale), _count_where(sale, Transaction.member_id.is_(None)),
        _count_where(sale, Transaction.points_redeemed > 0), _count_where(refund),
        _count_where(refunded, Transaction.refunded_amount == Transaction.amount),
        _count_where(refunded, Transaction.refunded_amount < Transaction.amount),
    )).one()
    points = dict(session.execute(sa.select(PointsEntry.kind, sa.func.sum(PointsEntry.points))
                                  .group_by(PointsEntry.kind)).all())
    tiers = session.execute(sa.select(Tier.code, sa.func.count(Member.id)).outerjoin(Member, Member.tier_id == Tier.id)
                            .group_by(Tier.code, Tier.rank).order_by(Tier.rank)).all()
    held = session.scalar(sa.select(sa.func.coalesce(sa.func.sum(Member.points_balance), 0)))
    members = sum(number for _, number in tiers)
    busiest = session.scalar(sa.select(Member.member_no).order_by(Member.points_balance.desc()).limit(1))
    days = [sale.occurred_at.astimezone(ZONE) for sale in (plan.sales[:1] + plan.sales[-1:])]
    period = f" from {days[0]:%Y-%m-%d} to {days[-1]:%Y-%m-%d}" if days else ""
    habits = Counter(person.habit.name for person in plan.members)
    return [
        f"demo loaded in {seconds:.1f} s (seed {seed})",
        f"stores: {len(STORES)} ({', '.join(f'{store.code} {store.name}' for store in STORES)}; Asia/Shanghai)",
        f"staff: {len(STAFF)} ({', '.join(f'{email} {role}' for email, role, _ in STAFF)}), "
        f"password: {DEMO_PASSWORD}",
        f"members: {members} (tiers: {', '.join(f'{code} {number}' for code, number in tiers)}; "
        f"habits: {', '.join(f'{name} {number}' for name, number in habits.most_common())})",
        f"sales: {sales}{period} ({anonymous} anonymous, {redeeming} redeeming points)",
        f"refunds: {refunds} ({fully} sales refunded in full, {partly} in part)",
        f"points: {points.get('earn', 0)} issued, {-points.get('redeem', 0)} redeemed, "
        f"{-points.get('reverse', 0)} reversed, {points.get('restore', 0)} restored; members hold {held}",
        f"POS API key for S001: {pos_key}",
        f"try: curl -H 'Authorization: Bearer {pos_key}' http://127.0.0.1:5000/api/v1/members/{busiest or 'MEMBER_NO'}",
    ]


def _count_where(*conditions):
    return sa.func.count(sa.case((sa.and_(*conditions), 1)))


def _as_sale(payload: dict) -> Sale:
    return Sale(external_id=payload["external_id"], occurred_at=payload["occurred_at"], currency=payload["currency"],
                amount=payload["amount"], subtotal=payload["subtotal"], member_code=payload.get("member"),
                store_code=payload["store_code"], channel=payload["channel"],
                lines=tuple(BasketLine(**line) for line in payload["lines"]),
                points_redeemed=payload["points_redeemed"])
