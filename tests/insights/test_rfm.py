"""RFM scoring on hand-built sales with answers worked out by hand (module docstring of
loyalty.insights.rfm has the formula), ties and refunds included; a reference implementation in
Python checked against the SQL on random data; snapshots, movement and pruning.

Run with `--db sqlite` and `--db postgresql`: the expected scores are the same literals on both.
"""

import random
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from purchases import buy, refund

from loyalty.extensions import db
from loyalty.insights import rfm
from loyalty.insights.models import RfmSnapshot, RfmSnapshotMember
from loyalty.members.models import Member
from loyalty.members.services import erase_member
from loyalty.sales.models import Transaction
from tests.support.clock import DEFAULT_NOW

# (purchases as (days ago, amount)) -> recency, frequency, monetary, code, segment; worked by hand:
# 10 buyers. Recency sorted: 0 0 3 3 30 60 120 200 300 364 -> members strictly more recent... e.g. C (3
# days) has 2 values below it: q = 1 + 5*2//10 = 2, R = 6 - 2 = 4.
# Frequency: five 1s (all F1, where NTILE would spread them over F1-F3), 2 2 3 4 5.
# Monetary: 50 80 200 300 300 400 400 500 600 1000 (I's 700 less a 300 refund ties with H's 400).
EXPECTED = {
    "A": (0, 5, 500, "554", "Champions"),
    "B": (0, 2, 600, "535", "Potential Loyalists"),
    "C": (3, 1, 1000, "415", "Promising"),
    "D": (3, 3, 300, "442", "Loyal Customers"),
    "E": (30, 1, 200, "312", "About To Sleep"),
    "F": (60, 2, 300, "332", "Need Attention"),
    "G": (200, 1, 50, "211", "Hibernating"),
    "H": (300, 4, 400, "153", "Can't Lose Them"),
    "I": (364, 1, 400, "113", "Hibernating"),
    "J": (120, 1, 80, "211", "Hibernating"),
}


@pytest.fixture
def known_sales(app, factory, pos):
    """The hand-built history; returns {name: member_no}."""
    numbers = {name: factory.member(name=name) for name in "ABCDEFGHIJKLM"}
    for days in (0, 10, 20, 30, 40):
        buy(pos, numbers["A"], days, 100)
    buy(pos, numbers["B"], 0, 300)
    buy(pos, numbers["B"], 5, 300)
    buy(pos, numbers["C"], 3, 1000)
    for days in (3, 50, 100):
        buy(pos, numbers["D"], days, 100)
    buy(pos, numbers["E"], 30, 200)
    buy(pos, numbers["F"], 60, 150)
    buy(pos, numbers["F"], 90, 150)
    buy(pos, numbers["G"], 200, 50)
    for days in (300, 310, 320, 330):
        buy(pos, numbers["H"], days, 100)
    refund(pos, buy(pos, numbers["I"], 364, 700), 300)  # last day inside the 365-day window
    refund(pos, buy(pos, numbers["J"], 100, 500), 500)  # refunded in full: not a purchase
    buy(pos, numbers["J"], 120, 80)
    # K never buys; L only on the first day outside the window; M buys, then is erased.
    buy(pos, numbers["L"], 365, 900)
    buy(pos, numbers["M"], 1, 5000)
    with app.app_context():
        member = db.session.scalar(sa.select(Member).where(Member.member_no == numbers["M"]))
        erase_member(db.session, member, now=DEFAULT_NOW, channel="staff")
        db.session.commit()
    return numbers


def scores_by_name(numbers):
    names = {number: name for name, number in numbers.items()}
    rows = db.session.execute(sa.select(
        Member.member_no, Member.rfm_recency_days, Member.rfm_frequency, Member.rfm_monetary, Member.rfm_code,
        Member.rfm_segment)).all()
    return {names[number]: tuple(values) for number, *values in rows if number in names}


def test_scores_and_segments_match_the_hand_worked_answers(app, known_sales):
    with app.app_context():
        run = rfm.score_rfm(db.session, DEFAULT_NOW, window_days=365)
        db.session.commit()
        scores = scores_by_name(known_sales)

    assert run.members == 12 and run.buyers == 10  # the erased member is neither
    for name, expected in EXPECTED.items():
        assert scores[name] == expected, name
    assert scores["K"] == (None, None, None, None, "No Purchases")
    assert scores["L"] == (None, None, None, None, "No Purchases")
    assert scores["M"] == (None, None, None, None, None)


def test_scores_are_the_individual_digits_of_the_code(app, known_sales):
    with app.app_context():
        rfm.score_rfm(db.session, DEFAULT_NOW)
        db.session.commit()
        for member in db.session.scalars(sa.select(Member).where(Member.rfm_code.is_not(None))):
            assert member.rfm_code == f"{member.rfm_r}{member.rfm_f}{member.rfm_m}"
            assert member.rfm_segment == rfm.segment_for(member.rfm_r, member.rfm_f)
            assert member.rfm_scored_at == DEFAULT_NOW


def test_a_shorter_window_changes_who_counts(app, known_sales):
    """Over 100 days (days 0..99) only A-F bought: N = 6. D's sale 100 days ago falls outside.
    Recency 0 0 3 3 30 60 -> R 5 5 4 4 2 1 (E has 4 values below it: 1 + 20 // 6 = 4, R = 2);
    frequency C1 E1 B2 D2 F2 A5 -> F 1 1 2 2 2 5; monetary D200 E200 F300 A500 B600 C1000 -> M 1 1 2 3 4 5."""
    with app.app_context():
        rfm.score_rfm(db.session, DEFAULT_NOW, window_days=100)
        db.session.commit()
        scores = scores_by_name(known_sales)

    assert {name: scores[name][:4] for name in "ABCDEF"} == {
        "A": (0, 5, 500, "553"), "B": (0, 2, 600, "524"), "C": (3, 1, 1000, "415"), "D": (3, 2, 200, "421"),
        "E": (30, 1, 200, "211"), "F": (60, 2, 300, "122")}
    assert all(scores[name][4] == "No Purchases" for name in "GHIJKL")


def test_rerunning_on_the_same_day_replaces_that_days_snapshot(app, known_sales):
    with app.app_context():
        first = rfm.score_rfm(db.session, DEFAULT_NOW)
        db.session.commit()
        before = scores_by_name(known_sales)
        second = rfm.score_rfm(db.session, DEFAULT_NOW + timedelta(hours=3))
        db.session.commit()

        assert scores_by_name(known_sales) == before
        assert db.session.scalar(sa.select(sa.func.count()).select_from(RfmSnapshot)) == 1
        assert db.session.scalar(sa.select(sa.func.count()).select_from(RfmSnapshotMember)) == 12
        assert db.session.scalar(sa.select(RfmSnapshot.as_of)) == DEFAULT_NOW + timedelta(hours=3)
        assert second.taken_on == first.taken_on


def test_segment_movement_between_the_last_two_snapshots(app, factory, pos, known_sales, clock):
    with app.app_context():
        rfm.score_rfm(db.session, DEFAULT_NOW)
        db.session.commit()
    # A day later K buys for the first time and a new member N enrols without buying.
    clock.advance(days=1)
    buy(pos, known_sales["K"], -1, 2000)
    factory.member(name="N")
    with app.app_context():
        rfm.score_rfm(db.session, DEFAULT_NOW + timedelta(days=1))
        db.session.commit()
        movement = rfm.segment_movement(db.session)
        after = {name: segment for name, (*_, segment) in scores_by_name(known_sales).items()}

    assert movement["previous"] == date(2026, 11, 22) and movement["current"] == date(2026, 11, 23)
    counts = movement["counts"]

    def moved(source, target):
        return counts[movement["from"].index(source)][movement["segments"].index(target)]

    assert moved("No Purchases", after["K"]) == 1
    assert moved(rfm.JOINED_SINCE, "No Purchases") == 1
    assert sum(map(sum, counts)) == 13  # 12 scored members, and N
    assert movement["moved"] + movement["stayed"] == 13


def test_no_snapshots_no_movement(app):
    with app.app_context():
        movement = rfm.segment_movement(db.session)
    assert movement["previous"] is None and movement["counts"] == []


def test_old_snapshots_are_pruned_to_the_first_of_each_month(app):
    start = datetime(2026, 8, 20, 2, tzinfo=UTC)
    with app.app_context():
        for day in range(0, 95, 3):
            rfm.score_rfm(db.session, start + timedelta(days=day), keep_days=35)
        db.session.commit()
        kept = sorted(db.session.scalars(sa.select(RfmSnapshot.taken_on)))
    last = (start + timedelta(days=93)).date()
    cutoff = last - timedelta(days=35)
    assert [d for d in kept if d < cutoff] == [date(2026, 8, 20), date(2026, 9, 1), date(2026, 10, 1)]
    assert all(d in kept for d in (start.date() + timedelta(days=n) for n in range(0, 95, 3))
               if d >= cutoff)


def test_the_grid_covers_every_cell_exactly_once():
    grid = rfm.segment_grid()
    assert len(grid) == 25 and set(grid) == {(r, f) for r in range(1, 6) for f in range(1, 6)}
    assert set(grid.values()) == set(rfm.SEGMENTS) - {rfm.NO_PURCHASES}
    assert grid[(5, 1)] == "New Customers" and grid[(2, 5)] == "Can't Lose Them" and grid[(3, 3)] == "Need Attention"


def test_a_rule_set_with_an_overlap_is_refused(monkeypatch):
    monkeypatch.setattr(rfm, "SEGMENT_RULES", rfm.SEGMENT_RULES + (("Extra", (5,), (5,)),))
    with pytest.raises(ValueError, match="both Champions and Extra"):
        rfm.segment_grid()


# --- the SQL against a reference written in Python ---------------------------------------------------

def reference_scores(purchases: dict[int, list[tuple[int, int]]], window_days: int) -> dict:
    """The module docstring's formula, literally: {member: (recency, frequency, monetary, r, f, m)}."""
    figures = {}
    for member, sales in purchases.items():
        inside = [(days, amount) for days, amount in sales if days < window_days]
        if inside:
            figures[member] = (min(days for days, _ in inside), len(inside), sum(amount for _, amount in inside))
    n = len(figures)

    def q(value, column):
        below = sum(1 for other in figures.values() if other[column] < value)
        return 1 + 5 * below // n

    return {member: (rec, freq, mon, 6 - q(rec, 0), q(freq, 1), q(mon, 2))
            for member, (rec, freq, mon) in figures.items()}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sql_scores_equal_the_reference_on_random_histories_full_of_ties(app, factory, pos, seed):
    chance = random.Random(seed)
    client_id = pos.client_id
    member_ids = []
    with app.app_context():
        store_id = factory.store()
        tier_id = db.session.scalar(sa.text("SELECT id FROM tiers ORDER BY rank LIMIT 1"))
        for n in range(60):
            member = Member(member_no=f"9{seed}{n:08d}", tier_id=tier_id, status="active")
            db.session.add(member)
            db.session.flush()
            member_ids.append(member.id)
        purchases = {}
        for number, member_id in enumerate(member_ids):
            # Few distinct values, so ties are everywhere: days from a short list, amounts in 3 sizes.
            sales = [(chance.choice([0, 0, 1, 7, 30, 30, 200, 400]), chance.choice([100, 250, 250, 1000]))
                     for _ in range(chance.choice([0, 1, 1, 1, 2, 3, 6]))]
            purchases[member_id] = sales
            for index, (days, amount) in enumerate(sales):
                db.session.add(Transaction(
                    client_id=client_id, kind="sale", external_id=f"RND-{seed}-{number}-{index}",
                    member_id=member_id, store_id=store_id, occurred_at=DEFAULT_NOW - timedelta(days=days),
                    currency="CNY", amount=amount, subtotal=amount))
        db.session.commit()

        rfm.score_rfm(db.session, DEFAULT_NOW, window_days=365)
        db.session.commit()
        rows = db.session.execute(sa.select(
            Member.id, Member.rfm_recency_days, Member.rfm_frequency, Member.rfm_monetary, Member.rfm_r,
            Member.rfm_f, Member.rfm_m).where(Member.id.in_(member_ids), Member.rfm_r.is_not(None))).all()

    assert {row[0]: tuple(row[1:]) for row in rows} == reference_scores(purchases, 365)
