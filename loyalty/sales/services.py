"""Recording sales and refunds: the one path every channel (POS API, batch backfill, staff console,
demo data) takes, so the same rules apply everywhere. Each front end builds a typed `Sale` or
`Refund` (sales.values); every rule about one is checked here, whoever calls.

A list of sales is recorded as one unit of work: the members named are locked once (in id order), each
sale is checked completely before anything of it is written, and a sale that fails records nothing
while the others go on. The caller commits.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import Session

from loyalty.auth.models import ApiClient
from loyalty.auth.services import ApiCaller
from loyalty.auth.store_binding import store_for_key
from loyalty.bulk import insert_rows
from loyalty.campaigns.redemption import (
    CouponPlan,
    give_back_coupons,
    plan_coupons,
    record_redemptions,
    redeem_coupons,
)
from loyalty.errors import (
    CurrencyMismatch,
    DomainError,
    Forbidden,
    InvalidFields,
    NotFound,
    RefundExceedsSale,
    ValidationFailed,
)
from loyalty.members.models import Member
from loyalty.members.services import resolve_member_codes
from loyalty.points.earning import SaleLine, compute_earning, promotion_extra
from loyalty.points.ledger import PointsSummary, Wallet, lock_wallet, save_wallets, wallets_for
from loyalty.points.program import Program, TierCopy
from loyalty.points.promotion_models import Promotion
from loyalty.points.promotions import (
    PromotionPoints,
    SaleContext,
    claim_points,
    covers_line,
    matches,
    member_segments,
    record_grants,
    running_promotions,
)
from loyalty.points.tiers import Climbers, climbers, save_tier_moves
from loyalty.sales.models import Transaction, TransactionLine
from loyalty.sales.values import Refund, Sale

TRANSACTIONS = Transaction.__table__
LINES = TransactionLine.__table__
# What posting a sale reads of a member (the wallet, the tier, the answer's member part): the members
# table is wide (RFM and churn scores), and a sale need not load all of it.
POSTING_COLUMNS = (Member.status, Member.name, Member.email, Member.enrolled_at, Member.tier_id,
                   Member.tier_since, Member.points_balance)


@dataclass(frozen=True)
class MemberSnapshot:
    """A member as they stood right after one sale or refund (a batch may hold several of theirs)."""

    member: Member
    tier: TierCopy
    points: PointsSummary


@dataclass
class NewSaleRow:
    """The `transactions` row a sale being recorded becomes (written in bulk by `_write_sales`, which
    sets `id`), with the attribute names of Transaction so an answer reads either."""

    client_id: int
    external_id: str
    store_id: int
    member_id: int | None
    channel: str
    occurred_at: datetime
    currency: str
    amount: int
    subtotal: int
    points_redeemed: int
    lines: list[dict]
    points_earned: int = 0
    qualifying_points: int = 0
    coupons: CouponPlan | None = None
    promotions: list[PromotionPoints] = field(default_factory=list)
    id: int | None = None
    kind: str = "sale"


@dataclass(frozen=True)
class RecordedSale:
    """What recording a sale did: its `transactions` row, the member after it, the coupons it redeemed
    ([{"code", "discount"}])."""

    row: NewSaleRow
    member: MemberSnapshot | None
    coupons: list[dict] = field(default_factory=list)

    @property
    def promotions(self) -> list[dict]:
        """What each promotion gave ([{"id", "name", "points"}])."""
        return [grant.response() for grant in self.row.promotions]


@dataclass(frozen=True)
class RecordedRefund:
    """What recording a refund did: the refund's row, the sale's (with its cumulative refund
    figures), the member after it."""

    refund: Transaction
    sale: Transaction
    member: MemberSnapshot | None


def record_sales(session: Session, program: Program, client: ApiClient | ApiCaller, sales: Sequence[Sale],
                 now: datetime) -> list[RecordedSale | DomainError]:
    """Record `sales` for `client`; one result per sale, in order: what was recorded, or why not.

    Each sale is decided in memory (its coupons claimed in a savepoint, the only step the database
    may still refuse), then the accepted sales are written together: transactions and lines, coupon
    redemptions, and the ledger rows of every wallet, a few multi-row statements in all."""
    members = resolve_member_codes(session, [sale.member_code for sale in sales if sale.member_code], now,
                                   lock=True, columns=POSTING_COLUMNS)
    wallets = wallets_for(session, {found.id: found for found in members.values() if isinstance(found, Member)}
                          .values())
    climbing = climbers(session, program, [wallet.member for wallet in wallets.values()], now)
    promotions = running_promotions(session, min(sale.occurred_at for sale in sales)) if wallets else []
    results: list[RecordedSale | DomainError] = []
    for sale in sales:
        try:
            results.append(_record_sale(session, program, client, sale, members, wallets, climbing, now,
                                        promotions))
        except DomainError as error:
            results.append(error)
    _write_sales(session, [result.row for result in results if isinstance(result, RecordedSale)], now)
    save_wallets(session, wallets.values())
    save_tier_moves(session, climbing.moves)
    return results


def _record_sale(session, program, client, sale: Sale, members, wallets, climbing: Climbers,
                 now, promotions: list[Promotion]) -> RecordedSale:
    _check_fields(sale, now)
    store = store_for_key(client, sale.store_code)
    wallet = _wallet_for(sale, members, wallets)
    _check_sale(program, sale, wallet, now)
    lines = [line.row(number) for number, line in enumerate(sale.lines, start=1)]
    coupons = plan_coupons(session, sale.coupon_codes, wallet.member if wallet else None,
                           subtotal=sale.basket_amount, lines=lines, now=now)
    # The one step the database may still refuse; from here on the sale is accepted.
    redeem_coupons(session, coupons, now)
    row = _sale_row(client, store, wallet, sale, lines, coupons)
    if wallet is None:
        return RecordedSale(row=row, member=None, coupons=coupons.response())
    if row.points_redeemed:
        wallet.redeem(row.points_redeemed, now=now, occurred_at=row.occurred_at, transaction=row,
                      reason=f"sale {row.external_id}", source="transaction")
    _earn(session, program, wallet, row, climbing, now, coupons, store, promotions)
    return RecordedSale(row=row, member=snapshot(program, wallet, now), coupons=coupons.response())


def _check_fields(sale: Sale, now: datetime) -> None:
    """The sale's own figures, before anything is looked up: the rules a malformed sale breaks."""
    errors = {}
    if sale.subtotal is not None and sale.subtotal < sale.amount:
        errors["subtotal"] = ["Must not be less than amount."]
    if sale.points_redeemed < 0:
        errors["points_redeemed"] = ["Must not be negative."]
    if _in_the_future(sale.occurred_at, now):
        errors["occurred_at"] = [FUTURE_REFUSAL]
    if errors:
        raise InvalidFields("the sale failed validation", errors=errors)


# Said of a time past SALE_FUTURE_TOLERANCE, the default 5 minutes (docs/api.md states the limit).
FUTURE_REFUSAL = "Must not be more than 5 minutes in the future."


def _in_the_future(occurred_at: datetime, now: datetime) -> bool:
    """Later than a till's clock running fast could explain (SALE_FUTURE_TOLERANCE)."""
    return occurred_at > now + current_app.config["SALE_FUTURE_TOLERANCE"]


def _check_sale(program: Program, sale: Sale, wallet: Wallet | None, now: datetime) -> None:
    """Everything that can refuse a sale, checked before any of it is written."""
    if sale.currency != program.settings.currency:
        raise CurrencyMismatch(f"the program's currency is {program.settings.currency}, not {sale.currency}")
    redeem = sale.points_redeemed
    if redeem and wallet is None:
        raise ValidationFailed("points can only be redeemed by a member",
                               errors={"points_redeemed": ["Requires a member."]})
    if redeem:
        wallet.redeem_check(redeem, now)


def _sale_row(client, store, wallet: Wallet | None, sale: Sale, lines: list[dict], coupons: CouponPlan) -> NewSaleRow:
    return NewSaleRow(
        client_id=client.id, external_id=sale.external_id, store_id=store.id,
        member_id=wallet.member.id if wallet else None, channel=sale.channel, occurred_at=sale.occurred_at,
        currency=sale.currency, amount=sale.amount, subtotal=sale.basket_amount,
        points_redeemed=sale.points_redeemed, lines=lines, coupons=coupons,
    )


def _write_sales(session: Session, rows: list[NewSaleRow], now: datetime) -> None:
    """Insert the accepted sales and their lines (one multi-row statement each) and record their
    coupon redemptions. A duplicate external_id fails here on the unique key (IntegrityError)."""
    if not rows:
        return
    ids = insert_rows(session, TRANSACTIONS, [
        {"client_id": row.client_id, "kind": "sale", "external_id": row.external_id, "store_id": row.store_id,
         "member_id": row.member_id, "channel": row.channel, "occurred_at": row.occurred_at,
         "currency": row.currency, "amount": row.amount, "subtotal": row.subtotal,
         "points_earned": row.points_earned, "qualifying_points": row.qualifying_points,
         "points_redeemed": row.points_redeemed} for row in rows], return_ids=True)
    for row, transaction_id in zip(rows, ids, strict=True):
        row.id = transaction_id
    insert_rows(session, LINES, [{"transaction_id": row.id, **line} for row in rows for line in row.lines])
    for row in rows:
        if row.coupons is not None:
            record_redemptions(session, row.coupons, row.id, now)
        if row.promotions:
            record_grants(session, row.id, row.member_id, row.promotions, now)


def _earn(session: Session, program: Program, wallet: Wallet, row: NewSaleRow, climbing: Climbers, now: datetime,
          coupons: CouponPlan, store, promotions: list[Promotion]) -> None:
    member = wallet.member
    sale_figures = dict(
        amount=row.amount, subtotal=row.subtotal, occurred_at=row.occurred_at,
        lines=[SaleLine(line["sku"], line["category"], line["amount"]) for line in row.lines],
    )
    tier = program.tier(member.tier_id)
    earning = compute_earning(program.settings, tier, program.earning_rules, **sale_figures)
    if coupons.earns_points:
        extra = coupons.extra_points(earning.base_points + earning.bonus_points)
        earning = compute_earning(program.settings, tier, program.earning_rules, extra_bonus=extra,
                                  **sale_figures)
    row.promotions = _promotion_points(session, program, tier, store, row, promotions)
    row.points_earned = earning.points + sum(grant.points for grant in row.promotions)
    row.qualifying_points = earning.base_points
    if row.points_earned or earning.base_points:
        available_at, expires_at = program.lot_dates(row.occurred_at)
        # A till whose clock runs a few minutes fast must not hold back points the program makes
        # available at once: the hold never starts later than the sale was posted.
        available_at = min(available_at, program.lot_dates(now)[0])
        wallet.credit("earn", row.points_earned, occurred_at=row.occurred_at, available_at=available_at,
                      expires_at=expires_at, qualifying_points=earning.base_points, transaction=row,
                      reason=_earning_reason(row), source="transaction")
    climbing.add(member, earning.base_points, row.occurred_at, now)


def _promotion_points(session: Session, program: Program, tier: TierCopy, store, row: NewSaleRow,
                      promotions: list[Promotion]) -> list[PromotionPoints]:
    """What each promotion covering the sale gives it (loyalty/points/promotions.py): its extra x the
    tier multiplier, claimed within its per-member limit and budget. The sale is accepted by now, so a
    claim is never undone by a later refusal of this sale."""
    lines = tuple(SaleLine(line["sku"], line["category"], line["amount"]) for line in row.lines)
    context = SaleContext(member_id=row.member_id, tier_code=tier.code, store_code=store.code,
                          store_timezone=store.timezone, channel=row.channel, occurred_at=row.occurred_at,
                          subtotal=row.subtotal, lines=lines)
    segments = member_segments(session, row.member_id, promotions)
    granted = []
    for promotion in promotions:
        if not matches(promotion, context, segments):
            continue
        targeted = promotion.skus or promotion.categories
        extra = promotion_extra(
            program.settings, multiplier_percent=promotion.multiplier_percent, bonus_points=promotion.bonus_points,
            amount=row.amount, subtotal=row.subtotal,
            matched_amount=sum(line.amount for line in lines if covers_line(promotion, line)) if targeted else None)
        points = claim_points(session, promotion, row.member_id, extra * tier.multiplier_percent // 100)
        if points:
            granted.append(PromotionPoints(promotion.id, promotion.name, points))
    return granted


def _earning_reason(row: NewSaleRow) -> str:
    """The ledger line of a sale's earning, naming the promotions that gave part of it."""
    reason = f"sale {row.external_id}"
    if row.promotions:
        reason += " (promotions: " + ", ".join(f"{grant.name} +{grant.points}" for grant in row.promotions) + ")"
    return reason if len(reason) <= 200 else reason[:199] + "…"


def _wallet_for(sale: Sale, members: dict, wallets: dict[int, Wallet]) -> Wallet | None:
    if not sale.member_code:
        return None
    found = members[sale.member_code]
    if isinstance(found, DomainError):
        raise found
    return wallets[found.id]


def snapshot(program: Program, wallet: Wallet, now: datetime) -> MemberSnapshot:
    return MemberSnapshot(member=wallet.member, tier=program.tier(wallet.member.tier_id), points=wallet.summary(now))


def get_sale(session: Session, client: ApiClient | ApiCaller, external_id: str, *,
             for_update: bool = False) -> Transaction:
    """The client's own sale; another client's sale of that id is forbidden, none at all is not found."""
    query = sa.select(Transaction).where(
        Transaction.client_id == client.id, Transaction.kind == "sale", Transaction.external_id == external_id
    )
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    sale = session.scalar(query)
    if sale is not None:
        return sale
    elsewhere = session.scalar(
        sa.select(Transaction.id).where(Transaction.kind == "sale", Transaction.external_id == external_id).limit(1)
    )
    if elsewhere is not None:
        raise Forbidden("this sale was posted by another client")
    raise NotFound(f"no sale has the external_id {external_id!r}")


def record_refund(session: Session, program: Program, client: ApiClient | ApiCaller, sale_external_id: str,
                  refund: Refund, now: datetime) -> RecordedRefund:
    """Refund part or all of a sale. Points are reversed and restored in proportion to the refunded
    share, cumulatively and rounded down (docs/api.md), so refunds adding up to the sale reverse exactly
    what it earned and restore exactly what it redeemed."""
    if refund.occurred_at is not None and _in_the_future(refund.occurred_at, now):
        raise InvalidFields("the refund failed validation", errors={"occurred_at": [FUTURE_REFUSAL]})
    sale = get_sale(session, client, sale_external_id)
    wallet = lock_wallet(session, sale.member_id) if sale.member_id else None
    sale = get_sale(session, client, sale_external_id, for_update=True)
    refunded = sale.refunded_amount + refund.amount
    if refunded > sale.amount:
        raise RefundExceedsSale(
            f"refunds would total {refunded}, more than the sale's {sale.amount}",
        )
    reversed_now = sale.points_earned * refunded // sale.amount - sale.points_reversed
    qualifying_now = sale.qualifying_points * refunded // sale.amount - sale.qualifying_reversed
    restored_now = sale.points_redeemed * refunded // sale.amount - sale.points_restored
    record = Transaction(
        client_id=client.id, kind="refund", external_id=refund.external_id, sale_id=sale.id,
        member_id=sale.member_id, store_id=sale.store_id, channel=sale.channel,
        occurred_at=refund.occurred_at or now, currency=sale.currency, amount=refund.amount,
        subtotal=refund.amount, points_reversed=reversed_now, qualifying_reversed=qualifying_now,
        points_restored=restored_now,
        lines=[TransactionLine(**line.row(number)) for number, line in enumerate(refund.lines, start=1)],
    )
    session.add(record)
    sale.refunded_amount = refunded
    sale.points_reversed += reversed_now
    sale.qualifying_reversed += qualifying_now
    sale.points_restored += restored_now
    if wallet is not None:
        _move_refund_points(program, wallet, sale, record, reversed_now, qualifying_now, restored_now)
    if refunded == sale.amount:
        give_back_coupons(session, sale, now)
    save_wallets(session, [wallet] if wallet else [])
    return RecordedRefund(refund=record, sale=sale, member=snapshot(program, wallet, now) if wallet else None)


def _move_refund_points(program, wallet, sale, record, reversed_now, qualifying_now, restored_now) -> None:
    source = {"transaction": record, "reason": f"refund {record.external_id} of sale {sale.external_id}",
              "source": "transaction"}
    if reversed_now or qualifying_now:
        wallet.debit("reverse", reversed_now, occurred_at=record.occurred_at, qualifying_points=qualifying_now,
                     prefer_transaction_id=sale.id, **source)
    if restored_now:
        # Restored points keep the expiry of the points the sale spent: a refund gives back what the
        # member had, not fresher points. If those have since expired, the next expiry run takes them.
        expires_at = wallet.spent_lot_expiry(sale.id) or program.lot_dates(record.occurred_at)[1]
        wallet.credit("restore", restored_now, occurred_at=record.occurred_at, available_at=record.occurred_at,
                      expires_at=expires_at, **source)
