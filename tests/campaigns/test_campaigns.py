"""Campaign launches (loyalty/campaigns/campaigns.py): the draw into control and treatment is stable
and fair, and a launch run twice, or cut short and run again, puts each member in the audience once,
in the same arm, with one coupon (or one bonus entry) at most, and nothing for control."""

import os
import signal
import time
from collections import Counter

import pytest
import sqlalchemy as sa

from loyalty.campaigns import campaigns as campaign_service
from loyalty.campaigns import segment_models
from loyalty.campaigns.campaign_models import Campaign, CampaignMember
from loyalty.campaigns.models import Coupon
from loyalty.clock import utcnow
from loyalty.extensions import db
from loyalty.members.models import Member
from loyalty.points.models import PointsEntry
from tests.campaigns.test_batches_and_wallets import run_queued_jobs
from tests.jobs.conftest import children, own_redis, started_at, workers  # noqa: F401  (fixtures)


def saved_segment(app, member_numbers) -> int:
    """A saved segment whose current members are these (as its last evaluation found them)."""
    with app.app_context():
        now = utcnow()
        segment = segment_models.Segment(name="Test segment", rule={"all": []}, member_count=len(member_numbers),
                                          evaluated_at=now)
        db.session.add(segment)
        db.session.flush()
        ids = db.session.scalars(sa.select(Member.id).where(Member.member_no.in_(member_numbers))).all()
        db.session.add_all(segment_models.SegmentMember(segment_id=segment.id, member_id=member_id, entered_at=now)
                           for member_id in ids)
        db.session.commit()
        return segment.id


@pytest.fixture
def segment(app, factory):
    """A saved segment of 40 members: (segment id, their member ids)."""
    numbers = [factory.member() for _ in range(40)]
    segment_id = saved_segment(app, numbers)
    with app.app_context():
        return segment_id, sorted(db.session.scalars(sa.select(Member.id).where(Member.member_no.in_(numbers))))


def create(manage, segment_id, **fields) -> dict:
    body = {"name": "Win back", "segment_id": segment_id, "control_percent": 30, **fields}
    response = manage.post("/campaigns", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def launch(app, manage, campaign_id) -> dict:
    response = manage.post(f"/campaigns/{campaign_id}/launch")
    assert response.status_code == 202, response.get_json()
    with app.app_context():
        run_queued_jobs(app)
    return manage.get(f"/campaigns/{campaign_id}").get_json()


def check_invariants(app, campaign_id, member_ids, *, offer_id=None, points=None):
    """Each segment member once, in the arm the draw gives; treatment acted on once with exactly one
    coupon of the offer or one bonus entry; control with nothing."""
    with app.app_context():
        campaign = db.session.get(Campaign, campaign_id)
        rows = db.session.scalars(sa.select(CampaignMember).where(CampaignMember.campaign_id == campaign_id)).all()
        assert sorted(row.member_id for row in rows) == member_ids
        for row in rows:
            assert row.arm == campaign_service.draw_arm(campaign_id, row.member_id, campaign.control_percent)
        treatment = {row.member_id for row in rows if row.arm == "treatment"}
        control = {row.member_id for row in rows if row.arm == "control"}
        assert treatment and control
        assert all(row.acted_at is None and row.coupon_id is None and row.points_entry_id is None
                   for row in rows if row.arm == "control")
        assert all(row.acted_at is not None for row in rows if row.arm == "treatment")
        if offer_id is not None:
            coupons = Counter(db.session.scalars(sa.select(Coupon.member_id).where(Coupon.offer_id == offer_id)))
            assert coupons == Counter(treatment)
            linked = {row.coupon_id for row in rows if row.arm == "treatment"}
            assert linked == set(db.session.scalars(sa.select(Coupon.id).where(Coupon.offer_id == offer_id)))
        if points is not None:
            bonuses = db.session.execute(sa.select(PointsEntry.member_id, PointsEntry.points).where(
                PointsEntry.source == f"campaign:{campaign_id}")).all()
            assert Counter(member_id for member_id, _ in bonuses) == Counter(treatment)
            assert {entry_points for _, entry_points in bonuses} == {points}
            balances = dict(db.session.execute(sa.select(Member.id, Member.points_balance)
                                               .where(Member.id.in_(member_ids))).all())
            assert all(balances[member_id] == points for member_id in treatment)
            assert all(balances[member_id] == 0 for member_id in control)
        assert (campaign.members_count, campaign.treatment_count, campaign.control_count, campaign.acted_count) \
            == (len(rows), len(treatment), len(control), len(treatment))
        return campaign.status


# --- the draw ------------------------------------------------------------------------------------

@pytest.mark.parametrize("control_percent", [0, 5, 20, 50])
def test_the_draw_is_stable_and_close_to_the_control_share(control_percent):
    member_ids = range(1, 10_001)
    arms = [campaign_service.draw_arm(7, member_id, control_percent) for member_id in member_ids]
    again = [campaign_service.draw_arm(7, member_id, control_percent) for member_id in member_ids]
    assert arms == again
    share = arms.count("control") / len(arms)
    # Four standard errors of a share over 10,000 members (at most 0.5 points): off by chance once in 15,000.
    assert abs(share - control_percent / 100) <= 4 * (0.25 / 10_000) ** 0.5
    if control_percent:
        other_campaign = [campaign_service.draw_arm(8, member_id, control_percent) for member_id in member_ids]
        assert other_campaign != arms  # each campaign draws its own control group


def test_a_member_in_control_at_a_share_stays_in_control_at_a_larger_share():
    """The buckets are nested: raising the control share only moves treatment members to control."""
    for member_id in range(1, 2_001):
        if campaign_service.draw_arm(3, member_id, 10) == "control":
            assert campaign_service.draw_arm(3, member_id, 30) == "control"


# --- launching -----------------------------------------------------------------------------------

def test_launching_twice_draws_and_gives_each_member_once(app, manage, campaigns, segment):
    segment_id, member_ids = segment
    offer = campaigns.offer(valid_days=30)
    campaign = create(manage, segment_id, action={"kind": "coupon", "offer_id": offer["id"]})
    assert campaign["status"] == "draft" and campaign["counts"]["members"] == 0

    first = launch(app, manage, campaign["id"])
    second = launch(app, manage, campaign["id"])

    assert first == second
    assert first["status"] == "running" and first["launched_at"]
    assert first["counts"]["members"] == 40
    assert first["counts"]["acted"] == first["counts"]["treatment"]
    assert check_invariants(app, campaign["id"], member_ids, offer_id=offer["id"]) == "running"


def test_bonus_points_go_to_treatment_once_through_the_ledger(app, manage, segment):
    segment_id, member_ids = segment
    campaign = create(manage, segment_id, control_percent=40, action={"kind": "bonus_points", "points": 250})
    launch(app, manage, campaign["id"])
    launch(app, manage, campaign["id"])
    check_invariants(app, campaign["id"], member_ids, points=250)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(PointsEntry)
                                 .where(PointsEntry.kind == "bonus")) == db.session.get(
            Campaign, campaign["id"]).treatment_count


def test_a_launch_cut_short_carries_on_without_doubling(app, manage, campaigns, factory, segment):
    """A run that froze the audience and acted on one chunk, then died: the next run (a retry, the
    sweeper, or launching again) acts on the rest only."""
    segment_id, member_ids = segment
    offer = campaigns.offer()
    campaign = create(manage, segment_id, action={"kind": "coupon", "offer_id": offer["id"]})
    with app.app_context():
        campaign_service.launch_campaign(db.session, campaign["id"], now=utcnow())
        db.session.commit()
        campaign_service.freeze_audience(db.session, campaign["id"], utcnow())
        db.session.commit()
        assert campaign_service.act_next_chunk(db.session, campaign["id"], utcnow(), chunk_size=5) == 5
        db.session.commit()
        assert db.session.get(Campaign, campaign["id"]).acted_count == 5
        # A member entering the segment after the audience was frozen is not added by the next run.
    newcomer = factory.member_row(factory.member())
    with app.app_context():
        db.session.add(segment_models.SegmentMember(segment_id=segment_id, member_id=newcomer.id,
                                                    entered_at=utcnow()))
        db.session.commit()

    state = launch(app, manage, campaign["id"])

    assert state["status"] == "running"
    check_invariants(app, campaign["id"], member_ids, offer_id=offer["id"])


def test_ending_stops_a_launch_and_launching_an_ended_campaign_changes_nothing(app, manage, segment):
    segment_id, _ = segment
    campaign = create(manage, segment_id, action={"kind": "bonus_points", "points": 10})
    ended = manage.post(f"/campaigns/{campaign['id']}/end")
    assert ended.status_code == 200 and ended.get_json()["status"] == "ended"
    state = launch(app, manage, campaign["id"])
    assert state["status"] == "ended" and state["counts"]["members"] == 0


# --- a real worker killed mid-launch ---------------------------------------------------------------

KILL_CONFIG = {"CAMPAIGN_LAUNCH_CHUNK_SIZE": 5, "CAMPAIGN_LAUNCH_RETRY_INTERVALS": [60],
               "CAMPAIGN_LAUNCH_STALL_SECONDS": 1}


@pytest.mark.live
def test_a_launch_whose_worker_is_killed_mid_way_finishes_once_when_launched_again(
        app, manage, campaigns, factory, monkeypatch, request):
    loyalty_workers = request.getfixturevalue("workers")
    for key, value in KILL_CONFIG.items():
        monkeypatch.setitem(app.config, key, value)
    numbers = [factory.member() for _ in range(300)]
    segment_id = saved_segment(app, numbers)
    with app.app_context():
        member_ids = sorted(db.session.scalars(sa.select(Member.id).where(Member.member_no.in_(numbers))))
    offer = campaigns.offer()
    campaign = create(manage, segment_id, control_percent=20, action={"kind": "coupon", "offer_id": offer["id"]})
    assert manage.post(f"/campaigns/{campaign['id']}/launch").status_code == 202

    worker = loyalty_workers.start("--no-scheduler", **KILL_CONFIG)
    deadline = time.monotonic() + 120
    while (acted := manage.get(f"/campaigns/{campaign['id']}").get_json()["counts"]["acted"]) < 30:
        assert time.monotonic() < deadline, "the launch never started"
        time.sleep(0.01)
    os.kill(max(children(worker.pid), key=started_at), signal.SIGKILL)
    loyalty_workers.kill(worker)
    state = manage.get(f"/campaigns/{campaign['id']}").get_json()
    assert state["status"] == "launching" and 30 <= state["counts"]["acted"] < state["counts"]["treatment"]
    assert acted >= 30

    # Launching again starts the job again (the dead run's RQ retry is still a minute away).
    again = manage.post(f"/campaigns/{campaign['id']}/launch")
    assert again.status_code == 202 and again.get_json()["status"] == "launching"
    loyalty_workers.run(**KILL_CONFIG)

    assert manage.get(f"/campaigns/{campaign['id']}").get_json()["status"] == "running"
    check_invariants(app, campaign["id"], member_ids, offer_id=offer["id"])


@pytest.mark.live
def test_a_launch_whose_worker_died_is_finished_by_the_sweeper(app, manage, factory, monkeypatch, request):
    loyalty_workers = request.getfixturevalue("workers")
    for key, value in KILL_CONFIG.items():
        monkeypatch.setitem(app.config, key, value)
    numbers = [factory.member() for _ in range(200)]
    segment_id = saved_segment(app, numbers)
    with app.app_context():
        member_ids = sorted(db.session.scalars(sa.select(Member.id).where(Member.member_no.in_(numbers))))
    campaign = create(manage, segment_id, control_percent=25, action={"kind": "bonus_points", "points": 100})
    assert manage.post(f"/campaigns/{campaign['id']}/launch").status_code == 202

    worker = loyalty_workers.start("--no-scheduler", **KILL_CONFIG)
    deadline = time.monotonic() + 120
    while manage.get(f"/campaigns/{campaign['id']}").get_json()["counts"]["acted"] < 20:
        assert time.monotonic() < deadline, "the launch never started"
        time.sleep(0.01)
    loyalty_workers.kill(worker)
    assert manage.get(f"/campaigns/{campaign['id']}").get_json()["status"] == "launching"
    time.sleep(KILL_CONFIG["CAMPAIGN_LAUNCH_STALL_SECONDS"] + 0.5)

    loyalty_workers.run(**KILL_CONFIG)  # a fresh worker sweeps first; nobody launches again

    assert manage.get(f"/campaigns/{campaign['id']}").get_json()["status"] == "running"
    check_invariants(app, campaign["id"], member_ids, points=100)
