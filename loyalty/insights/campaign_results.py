"""What a campaign earned: treatment against control over the conversion window, net of what the
points and discounts cost, and whether the split itself can be trusted (docs/api.md "Campaigns").

Each member's window opens when the campaign reached them (treatment: `acted_at`, when the coupon or
points were given; control: `drawn_at`, since they are given nothing) and lasts the campaign's
`conversion_window_days`. In it, a member's revenue is what their sales paid net of refunds, and they
converted if one of those sales was not refunded whole (a sale paid entirely by a coupon counts, as it
does on the dashboard). Arms are compared as drawn (intention to treat): a treatment member the launch
has not reached yet counts in the arm with nothing bought.

Cost is what the campaign gave: the bonus points it credited, at the program's redeem value, and the
discounts of its coupons redeemed on sales inside the window (a refund that gave the coupon back
takes its discount off again). A promotion action's extra points are not counted here.

Read-only; one query for both arms (a pass over the campaign's members with their sales) and one for
the cost, on SQLite and PostgreSQL.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loyalty.campaigns.campaign_models import Campaign, CampaignMember
from loyalty.campaigns.models import CouponRedemption
from loyalty.errors import NotFound
from loyalty.insights.uplift import (
    ArmSums,
    Difference,
    MoneyDifference,
    SampleRatio,
    in_minor_units,
    mean_difference,
    proportion_difference,
    sample_ratio,
)
from loyalty.points.models import PointsEntry
from loyalty.points.program import SettingsCopy
from loyalty.sales.models import Transaction


@dataclass(frozen=True)
class ArmResult:
    members: int
    converted: int
    conversion_rate: float | None
    # Minor units; per member rounded half up to a whole minor unit.
    revenue: int
    revenue_per_member: int | None


@dataclass(frozen=True)
class Cost:
    points_value: int
    discounts: int


@dataclass(frozen=True)
class Uplift:
    conversion_rate: Difference
    revenue_per_member: MoneyDifference
    incremental_revenue: int | None
    cost: Cost
    net_incremental: int | None


@dataclass(frozen=True)
class CampaignResults:
    campaign_id: int
    currency: str
    # From the first draw to the end of the last member's window; None before anyone was drawn.
    window_from: datetime | None
    window_to: datetime | None
    treatment: ArmResult
    control: ArmResult
    uplift: Uplift
    sample_ratio: SampleRatio


def _round_half_up(value: Fraction) -> int:
    return int((value + Fraction(1, 2)) // 1)


def _reached_at():
    return sa.case((CampaignMember.arm == "treatment", CampaignMember.acted_at), else_=CampaignMember.drawn_at)


def _days_after(session: Session, moment, days: int):
    """`moment` plus `days` days, in SQL. SQLite keeps UTC times as text 'YYYY-MM-DD HH:MM:SS.ffffff';
    its strftime writes milliseconds, padded back to six digits so the texts compare as times."""
    if session.get_bind().dialect.name == "postgresql":
        return moment + sa.literal(timedelta(days=days), sa.Interval())
    return sa.func.strftime("%Y-%m-%d %H:%M:%f", moment, f"+{days} days").concat("000")


def _in_window(session: Session, campaign: Campaign, occurred_at):
    reached_at = _reached_at()
    return sa.and_(occurred_at >= reached_at,
                   occurred_at < _days_after(session, reached_at, campaign.conversion_window_days))


def _arm_sums(session: Session, campaign: Campaign) -> dict[str, tuple[int, int, ArmSums]]:
    """arm → (members converted, each member's window revenue as sums), in one pass over the members."""
    sales = Transaction
    net = sales.amount - sales.refunded_amount
    bought = sa.and_(sales.id.is_not(None), sa.or_(sales.refunded_amount < sales.amount, sales.amount == 0))
    per_member = (
        sa.select(
            CampaignMember.arm.label("arm"),
            sa.func.coalesce(sa.func.sum(net), 0).label("revenue"),
            sa.func.max(sa.case((bought, 1), else_=0)).label("converted"),
        )
        .select_from(CampaignMember)
        .outerjoin(sales, sa.and_(sales.member_id == CampaignMember.member_id, sales.kind == "sale",
                                  _in_window(session, campaign, sales.occurred_at)))
        .where(CampaignMember.campaign_id == campaign.id)
        .group_by(CampaignMember.id, CampaignMember.arm)
        .subquery()
    )
    revenue = sa.cast(per_member.c.revenue, sa.Numeric)
    rows = session.execute(
        sa.select(per_member.c.arm, sa.func.count(), sa.func.sum(per_member.c.converted),
                  sa.func.sum(revenue), sa.func.sum(revenue * revenue))
        .group_by(per_member.c.arm)
    ).all()
    return {arm: (int(converted), ArmSums(int(count), int(total), int(squares)))
            for arm, count, converted, total, squares in rows}


def _window(session: Session, campaign: Campaign) -> tuple[datetime | None, datetime | None]:
    first_draw, last_reach = session.execute(
        sa.select(sa.func.min(CampaignMember.drawn_at), sa.func.max(_reached_at()))
        .where(CampaignMember.campaign_id == campaign.id)
    ).one()
    if first_draw is None:
        return None, None
    return first_draw, last_reach + timedelta(days=campaign.conversion_window_days)


def _cost(session: Session, campaign: Campaign, settings: SettingsCopy) -> Cost:
    points = sa.select(sa.func.coalesce(sa.func.sum(PointsEntry.points), 0)).select_from(CampaignMember).join(
        PointsEntry, PointsEntry.id == CampaignMember.points_entry_id
    ).where(CampaignMember.campaign_id == campaign.id).scalar_subquery()
    discounts = (
        sa.select(sa.func.coalesce(sa.func.sum(CouponRedemption.discount), 0))
        .select_from(CampaignMember)
        .join(CouponRedemption, CouponRedemption.coupon_id == CampaignMember.coupon_id)
        .join(Transaction, Transaction.id == CouponRedemption.transaction_id)
        .where(CampaignMember.campaign_id == campaign.id, CouponRedemption.reversed_at.is_(None),
               _in_window(session, campaign, Transaction.occurred_at))
        .scalar_subquery()
    )
    points_given, discounts_given = session.execute(sa.select(points, discounts)).one()
    # Points are worth what a member could take off a sale with them, as the dashboard's liability counts.
    points_value = int(points_given) * settings.redeem_value_minor // settings.redeem_points
    return Cost(points_value=points_value, discounts=int(discounts_given))


def _arm_result(converted: int, sums: ArmSums) -> ArmResult:
    if not sums.members:
        return ArmResult(0, 0, None, 0, None)
    return ArmResult(members=sums.members, converted=converted, conversion_rate=converted / sums.members,
                     revenue=sums.total, revenue_per_member=_round_half_up(Fraction(sums.total, sums.members)))


def campaign_results(session: Session, campaign_id: int, settings: SettingsCopy) -> CampaignResults:
    """The results of a campaign as its members' sales stand now (a running campaign's are partial)."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"no campaign has the id {campaign_id}")
    empty = (0, ArmSums(0, 0, 0))
    arms = _arm_sums(session, campaign)
    (t_converted, treatment), (c_converted, control) = arms.get("treatment", empty), arms.get("control", empty)
    revenue_difference = mean_difference(treatment, control)
    incremental = None
    if treatment.members and control.members:
        exact_difference = Fraction(treatment.total, treatment.members) - Fraction(control.total, control.members)
        incremental = _round_half_up(exact_difference * treatment.members)
    cost = _cost(session, campaign, settings)
    window_from, window_to = _window(session, campaign)
    return CampaignResults(
        campaign_id=campaign.id,
        currency=settings.currency,
        window_from=window_from,
        window_to=window_to,
        treatment=_arm_result(t_converted, treatment),
        control=_arm_result(c_converted, control),
        uplift=Uplift(
            conversion_rate=proportion_difference(t_converted, treatment.members, c_converted, control.members),
            revenue_per_member=in_minor_units(revenue_difference),
            incremental_revenue=incremental,
            cost=cost,
            net_incremental=None if incremental is None else incremental - cost.points_value - cost.discounts,
        ),
        sample_ratio=sample_ratio(control.members, treatment.members, campaign.control_percent),
    )
