"""How many points a sale earns (docs/api.md "Earning on a fresh install", docs/architecture.md EarningRule), and when
those points become available and expire."""

from datetime import UTC, datetime

import sqlalchemy as sa

from loyalty.extensions import db
from loyalty.members.models import Member
from loyalty.points.earning import SaleLine, compute_earning
from loyalty.points.models import EarningRule, PointsLot, ProgramSettings, Tier
from loyalty.points.program import Program

NOW = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)


def settings(**overrides) -> ProgramSettings:
    values = dict(currency="CNY", earn_points=1, earn_per_minor=100, redeem_points=100, redeem_value_minor=100,
                  lot_lifetime_days=365, hold_days=0, tier_window_days=365, tier_hold_days=365)
    return ProgramSettings(**{**values, **overrides})


def tier(percent: int) -> Tier:
    return Tier(code=f"T{percent}", name=f"x{percent}", rank=percent, threshold=0, multiplier_percent=percent)


def rule(**fields) -> EarningRule:
    values = dict(name="rule", sku=None, category=None, multiplier_percent=200, min_spend=0, starts_at=None,
                  ends_at=None, active=True)
    return EarningRule(**{**values, **fields})


def earn(amount: int, percent: int = 100, rules=(), *, subtotal: int | None = None, lines=(), at=NOW):
    return compute_earning(settings(), tier(percent), list(rules), amount=amount,
                           subtotal=amount if subtotal is None else subtotal, lines=list(lines), occurred_at=at)


def set_tier(app, member_no: str, code: str) -> None:
    with app.app_context():
        member = db.session.scalar(sa.select(Member).where(Member.member_no == member_no))
        member.tier = db.session.scalar(sa.select(Tier).where(Tier.code == code))
        db.session.commit()


# --- the formula ---------------------------------------------------------------------------------

def test_points_are_floor_of_floor_amount_over_100_times_the_multiplier():
    for amount, percent, points in [
        (0, 100, 0), (99, 100, 0), (100, 100, 1), (12899, 100, 128),
        (12345, 125, 153),   # floor(123 x 1.25) = floor(153.75)
        (12345, 150, 184),   # floor(123 x 1.5) = floor(184.5)
        (399, 125, 3),       # floor(3 x 1.25): the multiplier applies to whole points, not to money
        (10**12, 150, 15_000_000_000),
    ]:
        earning = earn(amount, percent)
        assert (earning.points, earning.base_points) == (points, amount // 100), (amount, percent)


def test_a_sale_earns_at_the_members_tier(pos, factory, app):
    for code, amount, points in [("BRONZE", 12345, 123), ("SILVER", 12345, 153), ("GOLD", 12345, 184),
                                 ("SILVER", 99, 0)]:
        member_no = factory.member()
        set_tier(app, member_no, code)

        body = pos.sale(member_no, amount).get_json()

        assert (body["points_earned"], body["member"]["tier"]["code"]) == (points, code)


def test_earning_counts_money_paid_not_the_basket(pos, factory):
    member_no = factory.member()

    body = pos.sale(member_no, 8000, subtotal=10000).get_json()

    assert body["points_earned"] == 80


# --- earning rules -------------------------------------------------------------------------------

def test_a_whole_sale_rule_multiplies_the_base_points():
    earning = earn(12345, 100, [rule(multiplier_percent=300)])

    assert earning.base_points == 123
    assert earning.bonus_points == 246
    assert earning.points == 369


def test_a_category_rule_applies_to_the_share_of_money_paid_for_its_lines():
    lines = [SaleLine("A1", "shoes", 6000), SaleLine("B1", "socks", 4000)]

    # Paid 8000 of a 10000 basket: the shoes' share is 4800, worth 48 base points, doubled = +48.
    earning = earn(8000, 100, [rule(category="shoes")], subtotal=10000, lines=lines)

    assert earning.bonus_points == 48
    assert earning.points == 80 + 48


def test_a_sku_rule_and_the_tier_multiplier_combine():
    lines = [SaleLine("A1", None, 10000), SaleLine("B1", None, 10000)]

    earning = earn(20000, 150, [rule(sku="A1", multiplier_percent=150)], lines=lines)

    # (200 base + 50 bonus) x 1.5
    assert earning.points == 375


def test_rules_outside_their_window_or_below_min_spend_or_inactive_do_not_apply():
    rules = [
        rule(starts_at=datetime(2026, 12, 1, tzinfo=UTC)),
        rule(ends_at=NOW),
        rule(min_spend=20000),
        rule(active=False),
    ]

    assert earn(10000, 100, rules).points == 100
    assert earn(10000, 100, [rule(starts_at=NOW, ends_at=datetime(2026, 12, 1, tzinfo=UTC))]).points == 200
    assert earn(20000, 100, [rule(min_spend=20000)]).points == 400


def test_an_earning_rule_in_the_database_applies_to_sales(pos, factory, app):
    with app.app_context():
        db.session.add(EarningRule(name="double shoes", category="shoes", multiplier_percent=200))
        db.session.add(EarningRule(name="switched off", multiplier_percent=1000, active=False))
        db.session.commit()
    member_no = factory.member()

    body = pos.sale(member_no, 10000, lines=[{"sku": "A1", "category": "shoes", "amount": 6000},
                                             {"sku": "B1", "category": "socks", "amount": 4000}]).get_json()

    assert body["points_earned"] == 100 + 60


# --- lot dates -------------------------------------------------------------------------------------

def program(**overrides) -> Program:
    return Program(settings=settings(**overrides), tiers=[], earning_rules=[])


def test_lots_expire_at_the_utc_midnight_after_365_days():
    for occurred_at, expires_at in [
        (datetime(2026, 11, 22, 2, 0, tzinfo=UTC), datetime(2027, 11, 23, tzinfo=UTC)),
        (datetime(2026, 11, 22, 23, 59, 59, tzinfo=UTC), datetime(2027, 11, 23, tzinfo=UTC)),
        (datetime(2026, 11, 22, 0, 0, tzinfo=UTC), datetime(2027, 11, 22, tzinfo=UTC)),
        (datetime(2027, 3, 1, 12, 0, tzinfo=UTC), datetime(2028, 3, 1, tzinfo=UTC)),  # 2028 is a leap year
    ]:
        assert program().lot_dates(occurred_at) == (occurred_at, expires_at)


def test_a_hold_delays_availability_by_whole_days():
    available_at, _ = program(hold_days=14).lot_dates(NOW)

    assert available_at == datetime(2026, 12, 6, 2, 0, tzinfo=UTC)


def test_a_sales_points_expire_from_when_it_occurred_not_when_it_was_posted(pos, factory, app):
    member_no = factory.member()

    # 10:00 in Shanghai on 1 March is 02:00Z; + 365 days = 2027-03-01T02:00Z, expiring at the next midnight.
    body = pos.sale(member_no, 10000, occurred_at="2026-03-01T10:00:00+08:00").get_json()

    assert body["member"]["points"]["expiring"] == [{"points": 100, "expires_at": "2027-03-02T00:00:00Z"}]
    with app.app_context():
        lot = db.session.scalar(sa.select(PointsLot))
        assert lot.available_at == datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
        assert lot.expires_at == datetime(2027, 3, 2, tzinfo=UTC)
        assert (lot.points, lot.remaining) == (100, 100)
