"""Campaign results (loyalty.insights.campaign_results and GET /api/v1/campaigns/{id}/results) over a
small campaign built by hand, whose every figure is worked out below from the sales it holds."""

import math
from datetime import timedelta

import pytest
import sqlalchemy as sa

from loyalty.campaigns.campaign_models import Campaign, CampaignMember
from loyalty.campaigns.models import Coupon
from loyalty.extensions import db
from loyalty.insights.campaign_results import campaign_results
from loyalty.members.models import Member
from loyalty.points.ledger import lock_wallets, save_wallets
from loyalty.points.program import load_program
from tests.support.clock import DEFAULT_NOW
from tests.support.factories import iso

DRAWN = DEFAULT_NOW
ACTED = DRAWN + timedelta(hours=1)
WINDOW_DAYS = 10
BONUS_POINTS = 500  # at the default 100 points = 1.00, worth 500 fen

# Treatment T1, T2, T3 (reached at ACTED), control C1, C2 (reached at DRAWN), window 10 days:
#   T1  10,000 paid with a 1,000-off campaign coupon on day 2; 500 bonus points  → revenue 10,000, converted
#   T2   5,000 on day 3, 2,000 of it refunded                                    → 3,000, converted
#        4,000 half an hour after the draw, before the coupon reached them       → outside
#        7,000 on day 12, after the window                                       → outside
#   T3   6,000 on day 4, refunded whole                                          → 0, not converted
#   C1   4,000 on day 5                                                          → 4,000, converted
#   C2   9,000 the day before the draw                                           → 0, not converted
#   someone outside the campaign: 8,000 on day 2                                 → nowhere
# Treatment: 3 members, 2 converted, revenue 13,000, per member 4,333.33 → 4,333
# Control: 2 members, 1 converted, revenue 4,000, per member 2,000
EXPECTED_ARMS = {
    "treatment": {"members": 3, "converted": 2, "conversion_rate": 2 / 3, "revenue": 13_000,
                  "revenue_per_member": 4_333},
    "control": {"members": 2, "converted": 1, "conversion_rate": 0.5, "revenue": 4_000, "revenue_per_member": 2_000},
}
# Conversion: diff = 2/3 − 1/2 = 0.166667; SE = sqrt((2/3)(1/3)/3 + (1/2)(1/2)/2) = sqrt(0.074074 + 0.125)
# = 0.446177; 1.96 · SE = 0.874507 → [−0.707840, 1.041174]
CONVERSION_DIFF = 1 / 6
CONVERSION_CI = (1 / 6 - 1.96 * math.sqrt(2 / 27 + 1 / 8), 1 / 6 + 1.96 * math.sqrt(2 / 27 + 1 / 8))
# Revenue per member (Welch): treatment 10,000, 3,000, 0: mean 4,333.33,
# s² = (5,666.67² + 1,333.33² + 4,333.33²)/2 = 26,333,333.3; control 4,000, 0: mean 2,000, s² = 8,000,000.
# SE = sqrt(26,333,333.3/3 + 8,000,000/2) = sqrt(12,777,777.8) = 3,574.602; diff = 2,333.33 → 2,333;
# 1.96 · SE = 7,006.22 → [−4,672.89, 9,339.55] → whole fen outwards [−4,673, 9,340]
# Incremental revenue = 2,333.33 × 3 treatment members = 7,000; cost 500 (points) + 1,000 (coupon);
# net 7,000 − 1,500 = 5,500.
# Sample ratio: 2 control of 5 at 20% asked: E = 1 and 4; χ² = 1²/1 + 1²/4 = 1.25; p = erfc(sqrt(0.625)).


@pytest.fixture
def manage(factory):
    return factory.api_client(scope="manage", name="crm")


def _at(pos, clock, member_no, amount, when, **fields):
    """A sale posted through the API a minute after it happened."""
    clock.set(when + timedelta(minutes=1))
    response = pos.sale(member_no, amount, occurred_at=iso(when), **fields)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["external_id"]


def _refund(pos, clock, sale_external_id, amount, when):
    clock.set(when + timedelta(minutes=1))
    response = pos.post(f"/transactions/{sale_external_id}/refunds",
                        json={"external_id": f"R-{sale_external_id}", "amount": amount, "occurred_at": iso(when)})
    assert response.status_code == 201, response.get_json()


def _member_id(member_no: str) -> int:
    return db.session.scalar(sa.select(Member.id).where(Member.member_no == member_no))


@pytest.fixture
def campaign_id(app, factory, pos, manage, clock):
    """The campaign described at the top of this module, with its sales; returns its id."""
    t1, t2, t3, c1, c2, outsider = (factory.member(name=f"Member {n}") for n in range(6))
    clock.set(DRAWN - timedelta(days=2))
    _at(pos, clock, c2, 9_000, DRAWN - timedelta(days=1))
    clock.set(ACTED)
    offer = manage.post("/offers", json={"name": "Come back", "kind": "amount_off", "value": 1_000}).get_json()
    coupon = manage.post(f"/offers/{offer['id']}/coupons", json={"member": t1}).get_json()["code"]
    with app.app_context():
        campaign = Campaign(name="Win back", segment_id=1, action={"kind": "coupon", "offer_id": offer["id"]},
                            control_percent=20, conversion_window_days=WINDOW_DAYS, status="running",
                            members_count=5, treatment_count=3, control_count=2, acted_count=3, launched_at=DRAWN)
        db.session.add(campaign)
        db.session.flush()
        wallets = lock_wallets(db.session, [_member_id(t1)])
        _, expires_at = load_program(db.session).lot_dates(ACTED)
        bonus = wallets[_member_id(t1)].credit("bonus", BONUS_POINTS, occurred_at=ACTED, available_at=ACTED,
                                               expires_at=expires_at, source=f"campaign:{campaign.id}")
        save_wallets(db.session, wallets.values())
        coupon_id = db.session.scalar(sa.select(Coupon.id).where(Coupon.member_id == _member_id(t1)))
        for member_no, arm in ((t1, "treatment"), (t2, "treatment"), (t3, "treatment"),
                               (c1, "control"), (c2, "control")):
            db.session.add(CampaignMember(
                campaign_id=campaign.id, member_id=_member_id(member_no), arm=arm, drawn_at=DRAWN,
                acted_at=ACTED if arm == "treatment" else None,
                coupon_id=coupon_id if member_no == t1 else None,
                points_entry_id=bonus.id if member_no == t1 else None))
        db.session.commit()
        campaign_id = campaign.id
    day = timedelta(days=1)
    _at(pos, clock, t2, 4_000, DRAWN + timedelta(minutes=30))  # before the campaign reached T2
    _at(pos, clock, t1, 10_000, ACTED + 2 * day, subtotal=11_000, coupons=[coupon])
    _at(pos, clock, outsider, 8_000, ACTED + 2 * day)
    t2_sale = _at(pos, clock, t2, 5_000, ACTED + 3 * day)
    _refund(pos, clock, t2_sale, 2_000, ACTED + 3 * day + timedelta(hours=2))
    t3_sale = _at(pos, clock, t3, 6_000, ACTED + 4 * day)
    _refund(pos, clock, t3_sale, 6_000, ACTED + 4 * day + timedelta(hours=2))
    _at(pos, clock, c1, 4_000, DRAWN + 5 * day)
    _at(pos, clock, t2, 7_000, ACTED + 12 * day)
    return campaign_id


def test_results_over_the_database(app, campaign_id):
    with app.app_context():
        results = campaign_results(db.session, campaign_id, load_program(db.session).settings)
    assert results.window_from == DRAWN
    assert results.window_to == ACTED + timedelta(days=WINDOW_DAYS)
    for arm, expected in EXPECTED_ARMS.items():
        got = getattr(results, arm)
        assert {**vars(got), "conversion_rate": pytest.approx(expected["conversion_rate"])} == expected
    uplift = results.uplift
    assert uplift.conversion_rate.diff == pytest.approx(CONVERSION_DIFF)
    assert uplift.conversion_rate.ci95 == pytest.approx(CONVERSION_CI)
    assert uplift.conversion_rate.ci95 == pytest.approx((-0.707840, 1.041174), abs=1e-6)
    assert (uplift.revenue_per_member.diff, uplift.revenue_per_member.ci95) == (2_333, (-4_673, 9_340))
    assert (uplift.incremental_revenue, uplift.cost.points_value, uplift.cost.discounts) == (7_000, 500, 1_000)
    assert uplift.net_incremental == 5_500
    ratio = results.sample_ratio
    assert (ratio.expected_control_share, ratio.observed_control_share, ratio.mismatch) == (0.2, 0.4, False)
    assert ratio.p_value == pytest.approx(math.erfc(math.sqrt(0.625)))


def test_results_endpoint(campaign_id, manage):
    response = manage.get(f"/campaigns/{campaign_id}/results")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert set(body) == {"window", "treatment", "control", "uplift", "sample_ratio", "verdict"}
    assert body["window"] == {"from": "2026-11-22T02:00:00Z", "to": "2026-12-02T03:00:00Z"}
    for arm, expected in EXPECTED_ARMS.items():
        assert body[arm] == {**expected, "conversion_rate": pytest.approx(expected["conversion_rate"])}
    assert body["uplift"] == {
        "conversion_rate": {"diff": pytest.approx(CONVERSION_DIFF), "ci95": pytest.approx(list(CONVERSION_CI))},
        "revenue_per_member": {"diff": 2_333, "ci95": [-4_673, 9_340]},
        "incremental_revenue": 7_000,
        "cost": {"points_value": 500, "discounts": 1_000},
        "net_incremental": 5_500,
    }
    assert body["sample_ratio"] == {"expected_control_share": 0.2, "observed_control_share": 0.4,
                                    "p_value": pytest.approx(math.erfc(math.sqrt(0.625))), "mismatch": False}
    # Per member: costs 1,500 / 3 = 500; net 5,500 / 3 = 1,833.33 → 1,833.
    assert body["verdict"] == ("treatment members spent ¥23.33 more each, 95% interval −¥46.73–¥93.40; "
                               "after ¥5.00 of coupons and points per member the campaign earned ¥18.33 per member")


def test_a_campaign_nobody_was_drawn_into(app, manage):
    with app.app_context():
        campaign = Campaign(name="Empty", segment_id=1, action={"kind": "bonus_points", "points": 10},
                            control_percent=10, conversion_window_days=30)
        db.session.add(campaign)
        db.session.commit()
        campaign_id = campaign.id
    body = manage.get(f"/campaigns/{campaign_id}/results").get_json()
    assert body["window"] == {"from": None, "to": None}
    assert body["treatment"] == body["control"] == {"members": 0, "converted": 0, "conversion_rate": None,
                                                    "revenue": 0, "revenue_per_member": None}
    assert body["uplift"]["conversion_rate"] == {"diff": None, "ci95": None}
    assert body["uplift"]["net_incremental"] is None
    assert body["sample_ratio"]["p_value"] is None
    assert body["verdict"] == "not enough members in both arms to compare yet"


def test_results_need_the_manage_scope_and_a_campaign(campaign_id, pos, manage):
    assert pos.get(f"/campaigns/{campaign_id}/results").status_code == 403
    missing = manage.get(f"/campaigns/{campaign_id + 1000}/results")
    assert missing.status_code == 404
    assert missing.get_json()["type"].endswith("/not-found")
