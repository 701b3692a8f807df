"""The program: settings and tiers. Money typed in yuan becomes integer fen exactly; the program's rules
are refused with a clear message and nothing changed; each change is audited before/after; the new
program takes effect at once in this process. A new threshold is previewed (members moving up and
down, counted with the tier evaluation's own qualifying points) before it is saved."""

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from loyalty.extensions import db
from loyalty.members.models import Member
from loyalty.points.models import TierChange
from loyalty.points.program import load_program
from tests.support.clock import DEFAULT_NOW

SETTINGS = {"earn_points": "1", "earn_per": "1.00", "redeem_points": "100", "redeem_value": "1.00",
            "lot_lifetime_days": "365", "hold_days": "0", "tier_window_days": "365", "tier_hold_days": "365"}


def tier_form(tier, **changes) -> dict:
    return {"name": tier.name, "threshold": str(tier.threshold), "multiplier": f"{tier.multiplier:.2f}",
            "benefits": tier.benefits, "action": "save", **changes}


# --- settings ------------------------------------------------------------------------------------

def test_settings_form_shows_the_program_in_yuan(admin):
    html = admin.get("/admin/program/").get_data(as_text=True)
    assert re.search(r'<input id="earn_per"[^>]* value="1.00">', html)
    assert re.search(r'<input id="redeem_value"[^>]* value="1.00">', html)
    assert 'id="tier-GOLD"' in html and "×1.50" in html


# 0.29 and 1.15 are what a float would get wrong (0.29 * 100 == 28.999999999999996).
@pytest.mark.parametrize(("typed", "fen"), [("0.01", 1), ("0.10", 10), ("0.29", 29), ("1.15", 115), ("12.34", 1234),
                                            ("5", 500), ("¥2.5", 250), ("1000000.99", 100000099)])
def test_money_becomes_fen_exactly(admin, admin_db, typed, fen):
    response = admin.post("/admin/program/settings", {**SETTINGS, "redeem_value": typed})
    assert response.status_code == 302
    assert admin_db.settings().redeem_value_minor == fen


def test_settings_change_is_audited_and_applies_at_once(admin, admin_db, staff, app, pos, factory):
    member_no = factory.member()
    with app.app_context():
        load_program(db.session)  # a copy in the hot cache, as a busy process would hold
    response = admin.post("/admin/program/settings", {**SETTINGS, "earn_points": "3", "earn_per": "2.00",
                                                      "hold_days": "7"})
    assert response.status_code == 302
    assert "Program settings saved." in admin.get("/admin/program/").get_data(as_text=True)
    [event] = admin_db.events("program.")
    assert (event.action, event.subject, event.staff_user_id) == ("program.update", "program:settings", staff.admin)
    assert event.before == {"earn_points": 1, "earn_per_minor": 100, "hold_days": 0}
    assert event.after == {"earn_points": 3, "earn_per_minor": 200, "hold_days": 7}
    with app.app_context():
        assert load_program(db.session).settings.earn_points == 3
    # 3 points per 2.00: a sale of 10.00 earns 15 (was 10).
    assert pos.sale(member_no, 1000).get_json()["points_earned"] == 15


def test_saving_the_same_settings_writes_nothing(admin, admin_db):
    response = admin.post("/admin/program/settings", SETTINGS)
    assert response.status_code == 302
    assert "Nothing was changed." in admin.get("/admin/program/").get_data(as_text=True)
    assert admin_db.events("program.") == []


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"earn_points": "0"}, "earn_points", "A whole number of points, at least 1."),
    ({"earn_points": "-1"}, "earn_points", "A whole number of points, at least 1."),
    ({"earn_points": "1.5"}, "earn_points", "Not a valid integer value."),
    ({"earn_points": ""}, "earn_points", "Enter a whole number."),
    ({"earn_per": "0.00"}, "earn_per", "An amount of at least 0.01."),
    ({"earn_per": "1.005"}, "earn_per", "Enter an amount in yuan, like 1.00"),
    ({"earn_per": "1e3"}, "earn_per", "Enter an amount in yuan, like 1.00"),
    ({"earn_per": "-1.00"}, "earn_per", "Enter an amount in yuan, like 1.00"),
    ({"redeem_points": "0"}, "redeem_points", "A whole number of points, at least 1."),
    ({"redeem_value": "abc"}, "redeem_value", "Enter an amount in yuan, like 1.00"),
    ({"redeem_value": "0"}, "redeem_value", "An amount of at least 0.01."),
    ({"lot_lifetime_days": "0"}, "lot_lifetime_days", "At least 1 day."),
    ({"hold_days": "365"}, "hold_days", "fewer than the days before points expire"),
    ({"hold_days": "-1"}, "hold_days", "fewer than the days before points expire"),
    ({"tier_window_days": "0"}, "tier_window_days", "At least 1 day."),
    ({"tier_hold_days": "-5"}, "tier_hold_days", "0 or more days."),
    ({"earn_points": "99999999999999999999"}, "earn_points", "A whole number of points, at least 1."),
])
def test_bad_settings_are_refused_and_change_nothing(admin, admin_db, app, changes, field, message):
    before = admin_db.settings()
    response = admin.post("/admin/program/settings", {**SETTINGS, "earn_points": "2", **changes})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in html
    assert f'id="{field}"' in html.split(message)[0].rsplit('class="field', 1)[1]
    after = admin_db.settings()
    assert {name: getattr(after, name) for name in SETTINGS if hasattr(after, name)} == \
        {name: getattr(before, name) for name in SETTINGS if hasattr(before, name)}
    assert (after.earn_per_minor, after.redeem_value_minor) == (before.earn_per_minor, before.redeem_value_minor)
    assert admin_db.events() == []


# --- tier fields -------------------------------------------------------------------------------------

def test_edit_a_tier_without_moving_anyone(admin, admin_db, staff, app):
    silver = admin_db.tiers()["SILVER"]
    response = admin.post(f"/admin/program/tiers/{silver.id}",
                          tier_form(silver, name="Argent", multiplier="1.3", benefits="Free gift wrap"))
    assert response.status_code == 302 and response.location == "/admin/program/"
    assert "Argent saved." in admin.get("/admin/program/").get_data(as_text=True)
    saved = admin_db.tiers()["SILVER"]
    assert (saved.name, saved.multiplier_percent, saved.benefits, saved.threshold) == \
        ("Argent", 130, "Free gift wrap", 1000)
    [event] = admin_db.events("tier.")
    assert (event.action, event.subject, event.staff_user_id) == ("tier.update", "tier:SILVER", staff.admin)
    assert event.before == {"name": "Silver", "multiplier_percent": 125, "benefits": ""}
    assert event.after == {"name": "Argent", "multiplier_percent": 130, "benefits": "Free gift wrap"}
    with app.app_context():
        assert load_program(db.session).tiers[1].multiplier_percent == 130


@pytest.mark.parametrize(("tier_code", "changes", "field", "message"), [
    ("SILVER", {"multiplier": "0.99"}, "multiplier", "At least 1.00"),
    ("SILVER", {"multiplier": "1.255"}, "multiplier", "Enter a multiplier like 1.25"),
    ("SILVER", {"multiplier": "abc"}, "multiplier", "Enter a multiplier like 1.25"),
    ("SILVER", {"multiplier": "101"}, "multiplier", "at most 100.00"),
    ("SILVER", {"name": "  "}, "name", "This field is required."),
    ("SILVER", {"threshold": "5000", "action": "preview"}, "threshold", "less than Gold&#39;s 5,000"),
    ("SILVER", {"threshold": "0", "action": "preview"}, "threshold", "More than Bronze&#39;s 0 points"),
    ("SILVER", {"threshold": "-10", "action": "preview"}, "threshold", "More than Bronze&#39;s 0 points"),
    ("SILVER", {"threshold": "x"}, "threshold", "Not a valid integer value."),
    ("GOLD", {"threshold": "1000", "action": "preview"}, "threshold", "More than Silver&#39;s 1,000 points."),
    ("BRONZE", {"threshold": "10", "action": "preview"}, "threshold", "The lowest tier&#39;s threshold is always 0"),
    # Saving straight away (a crafted form) is refused by the rules just the same.
    ("GOLD", {"threshold": "900", "previewed_threshold": "900"}, "threshold", "More than Silver&#39;s 1,000"),
])
def test_bad_tiers_are_refused_and_change_nothing(admin, admin_db, tier_code, changes, field, message):
    tier = admin_db.tiers()[tier_code]
    before = {code: (t.name, t.threshold, t.multiplier_percent) for code, t in admin_db.tiers().items()}
    response = admin.post(f"/admin/program/tiers/{tier.id}", tier_form(tier, **changes))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in html
    assert f'id="{field}"' in html.split(message)[0].rsplit('class="field', 1)[1]
    assert {code: (t.name, t.threshold, t.multiplier_percent) for code, t in admin_db.tiers().items()} == before
    assert admin_db.events() == []


# --- threshold previews --------------------------------------------------------------------------

@pytest.fixture
def members(factory, pos, app) -> dict:
    """Members with known qualifying points (base points in the last 365 days, net of refunds), each in
    the tier the sales moved them to (defaults: SILVER 1,000, GOLD 5,000)."""
    made = {}
    for name, fen in [("a", 50_000), ("b", 80_000), ("c", 150_000), ("d", 300_000), ("e", 550_000),
                      ("f", 700_000), ("g", 0), ("refunded", 600_000), ("suspended", 300_000)]:
        made[name] = factory.member(name=name)
        if fen:
            assert pos.sale(made[name], fen, external_id=f"sale-{name}").status_code == 201
    # 6,000 points, 3,000 of them refunded: GOLD, qualifying 3,000.
    refund = pos.post("/transactions/sale-refunded/refunds", json={"external_id": "R-1", "amount": 300_000})
    assert refund.status_code == 201, refund.get_json()
    # 3,000 points earned 400 days ago: outside the window, they qualify for nothing.
    made["old"] = factory.member(name="old")
    old_sale = pos.sale(made["old"], 300_000, occurred_at=(DEFAULT_NOW - timedelta(days=400)).isoformat())
    assert old_sale.status_code == 201
    with app.app_context():
        db.session.execute(sa.update(Member).where(Member.member_no == made["suspended"]).values(status="suspended"))
        db.session.commit()
    return made


def tier_codes(app, members: dict) -> dict:
    with app.app_context():
        rows = db.session.execute(sa.select(Member.member_no, Member.tier_id)).all()
        codes = {tier.id: tier.code for tier in load_program(db.session).tiers}
        by_no = {member_no: codes[tier_id] for member_no, tier_id in rows}
    return {name: by_no[member_no] for name, member_no in members.items()}


def test_the_members_hold_the_tiers_their_sales_earned(app, members):
    assert tier_codes(app, members) == {"a": "BRONZE", "b": "BRONZE", "c": "SILVER", "d": "SILVER", "e": "GOLD",
                                        "f": "GOLD", "g": "BRONZE", "refunded": "GOLD", "suspended": "SILVER",
                                        "old": "BRONZE"}


# Counted: members whose qualified tier the new threshold alters, by the direction they would move. The
# refunded member (GOLD, 3,000 qualifying) is due to move down to SILVER whatever GOLD's threshold is,
# so only a change that lowers where they land counts them.
@pytest.mark.parametrize(("tier_code", "threshold", "up", "down"), [
    ("GOLD", 2_000, 1, 0),     # d (3,000); not the suspended member, not the old points
    ("GOLD", 1_200, 2, 0),     # c, d
    ("GOLD", 5_000, 0, 0),     # unchanged
    ("GOLD", 5_500, 0, 0),     # e has exactly 5,500: still qualifies
    ("GOLD", 5_501, 0, 1),     # e
    ("GOLD", 7_001, 0, 2),     # e, f
    ("SILVER", 800, 1, 0),     # b (exactly 800)
    ("SILVER", 400, 2, 0),     # a, b
    ("SILVER", 2_000, 0, 1),   # c
    ("SILVER", 3_001, 0, 3),   # c, d, and refunded would land in BRONZE, not SILVER
])
def test_preview_counts_exactly_the_members_who_would_move(admin, admin_db, members, tier_code, threshold, up, down):
    tier = admin_db.tiers()[tier_code]
    if threshold != tier.threshold:
        response = admin.post(f"/admin/program/tiers/{tier.id}",
                              tier_form(tier, threshold=str(threshold), action="preview"))
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        member_word = "member" if up == 1 else "members"
        assert f"{up} {member_word} would move up to {tier.name}, {down} would move down." in html
        assert re.search(rf'name="previewed_threshold" type="hidden" value="{threshold}"', html)
    moves = admin.get(f"/admin/program/tiers/{tier.id}/moves.json?threshold={threshold}").get_json()
    assert (moves["moving_up"], moves["moving_down"]) == (up, down)
    # A preview saves nothing.
    assert admin_db.tiers()[tier_code].threshold == tier.threshold
    assert admin_db.events("tier.") == []


def test_a_new_threshold_is_previewed_before_it_is_saved(admin, admin_db, members):
    gold = admin_db.tiers()["GOLD"]
    # "Save" with a threshold not yet previewed shows the preview instead.
    first = admin.post(f"/admin/program/tiers/{gold.id}", tier_form(gold, threshold="2000"))
    assert first.status_code == 200 and 'id="preview"' in first.get_data(as_text=True)
    assert admin_db.tiers()["GOLD"].threshold == 5000
    # A different threshold than the one previewed is previewed again.
    again = admin.post(f"/admin/program/tiers/{gold.id}",
                       tier_form(gold, threshold="1200", previewed_threshold="2000"))
    assert "2 members would move up to Gold" in again.get_data(as_text=True)
    assert admin_db.tiers()["GOLD"].threshold == 5000


def test_saving_a_lower_threshold_moves_members_up_at_once(admin, admin_db, app, members, staff):
    gold = admin_db.tiers()["GOLD"]
    response = admin.post(f"/admin/program/tiers/{gold.id}",
                          tier_form(gold, threshold="2000", previewed_threshold="2000"))
    assert response.status_code == 302
    assert "Gold saved: 1 member moved up at once." in admin.get("/admin/program/").get_data(as_text=True)
    assert tier_codes(app, members)["d"] == "GOLD"
    assert tier_codes(app, members)["suspended"] == "SILVER"
    with app.app_context():
        [change] = db.session.scalars(sa.select(TierChange).where(TierChange.to_tier_id == gold.id,
                                                                  TierChange.qualifying_points == 3000)).all()
        assert (change.reason, change.created_at) == ("upgrade", DEFAULT_NOW)
    [event] = admin_db.events("tier.")
    assert event.before == {"threshold": 5000}
    assert event.after == {"threshold": 2000, "members_moved_up": 1}
    assert event.staff_user_id == staff.admin


def test_saving_a_higher_threshold_moves_nobody_down_before_the_tier_review(admin, admin_db, app, members, clock):
    from loyalty.points import tasks

    gold = admin_db.tiers()["GOLD"]
    response = admin.post(f"/admin/program/tiers/{gold.id}",
                          tier_form(gold, threshold="5501", previewed_threshold="5501"))
    assert response.status_code == 302
    assert "Gold saved." in admin.get("/admin/program/").get_data(as_text=True)
    assert tier_codes(app, members)["e"] == "GOLD"
    with app.app_context():
        assert tasks.evaluate_tiers()["downgraded"] == 0  # held less than the tier hold period
    # A year on (the points still in the window), the nightly review moves them down.
    with app.app_context():
        db.session.execute(sa.update(Member).values(tier_since=DEFAULT_NOW - timedelta(days=366)))
        db.session.commit()
        assert tasks.evaluate_tiers()["downgraded"] == 2
    codes = tier_codes(app, members)
    assert (codes["e"], codes["refunded"], codes["f"]) == ("SILVER", "SILVER", "GOLD")


def test_the_tier_page_says_when_a_new_threshold_applies(admin, admin_db):
    html = admin.get(f"/admin/program/tiers/{admin_db.tiers()['GOLD'].id}").get_data(as_text=True)
    assert "members it lifts move up at once" in html
    assert "move down at the nightly tier review once they have held their tier 365 days" in html


def test_moves_json_refuses_bad_thresholds(admin, admin_db):
    gold = admin_db.tiers()["GOLD"]
    assert admin.get(f"/admin/program/tiers/{gold.id}/moves.json?threshold=abc").status_code == 422
    refused = admin.get(f"/admin/program/tiers/{gold.id}/moves.json?threshold=10")
    assert refused.status_code == 422 and "More than Silver" in refused.get_json()["error"]
    assert admin.get("/admin/program/tiers/999999/moves.json?threshold=10").status_code == 404
