"""The insights jobs end to end on the test database: the churn history read in one query, churn
scores written back (with the BG/NBD fallback on short histories), job runs recorded, reruns
idempotent, and the nightly schedule declared."""

import importlib
import random
from datetime import timedelta

import numpy as np
import pytest
import sqlalchemy as sa
from purchases import buy, refund

from loyalty.extensions import db
from loyalty.insights import churn, tasks
from loyalty.insights.churn_models import churn_facts
from loyalty.insights.models import AssociationRule, JobRun, RfmSnapshot
from loyalty.insights.purchase_log import as_day
from loyalty.jobs import PERIODIC_JOBS, QUEUES
from loyalty.members.models import Member
from loyalty.members.services import erase_member
from loyalty.sales.models import Transaction
from tests.support.clock import DEFAULT_NOW

TODAY = as_day(DEFAULT_NOW)


def member(member_no):
    return db.session.scalar(sa.select(Member).where(Member.member_no == member_no))


def insert_history(factory, pos, histories: list[list[int]], prefix="H") -> list[int]:
    """Members with purchases on the given days ago (100.00 each), written as rows: hundreds of
    members with two years of history would take minutes through the API. Returns member ids."""
    store_id = factory.store()
    with factory.app.app_context():
        tier_id = db.session.scalar(sa.text("SELECT id FROM tiers ORDER BY rank LIMIT 1"))
        ids = []
        for number, days in enumerate(histories):
            row = Member(member_no=f"{prefix}{number:09d}", tier_id=tier_id, status="active")
            db.session.add(row)
            db.session.flush()
            ids.append(row.id)
            db.session.add_all(Transaction(
                client_id=pos.client_id, kind="sale", external_id=f"{prefix}-{number}-{index}", member_id=row.id,
                store_id=store_id, occurred_at=DEFAULT_NOW - timedelta(days=days_ago), currency="CNY",
                amount=10000, subtotal=10000) for index, days_ago in enumerate(days))
        db.session.commit()
        return ids


def test_the_event_log_is_purchases_net_of_refunds_by_day(app, factory, pos):
    """What churn learns from: sales not refunded in full, of members not erased, up to now, anonymous
    sales left out. The same arrays on SQLite (plain SELECT) and PostgreSQL (binary COPY)."""
    kept, erased = factory.member(), factory.member()
    buy(pos, kept, 10, 1000)
    refund(pos, buy(pos, kept, 5, 800), 300)
    refund(pos, buy(pos, kept, 3, 400), 400)
    buy(pos, None, 2, 999)
    buy(pos, erased, 1, 700)
    with app.app_context():
        erase_member(db.session, member(erased), now=DEFAULT_NOW, channel="staff")
        db.session.commit()
        kept_id = member(kept).id

        log = churn.load_event_log(db.session, DEFAULT_NOW)
        earlier = churn.load_event_log(db.session, DEFAULT_NOW - timedelta(days=7))

    order = np.argsort(log.days)
    assert log.customer_ids[order].tolist() == [kept_id, kept_id]
    assert log.days[order].tolist() == [TODAY - 10, TODAY - 5]
    assert log.amounts[order].tolist() == [1000.0, 500.0]
    assert earlier.days.tolist() == [TODAY - 10]


def test_a_short_history_is_scored_by_the_bgnbd_with_bands_and_explanations(app, factory, pos):
    regular, lapsed, never = factory.member(), factory.member(), factory.member()
    for days in (50, 30, 10):
        buy(pos, regular, days, 5000)
    buy(pos, lapsed, 80, 5000)
    buy(pos, lapsed, 60, 5000)
    with app.app_context():
        result = tasks.score_churn()
        rows = {number: member(number) for number in (regular, lapsed, never)}

        # Nothing bought before now - 90 days: no labels to train on, so the BG/NBD scores.
        assert result["model"] == "BGNBDChurn" and result["scored"] == 2
        assert rows[regular].churn_explanation == "r10 f3 g20"
        assert rows[lapsed].churn_explanation == "r60 f2 g20"
        assert rows[lapsed].churn_risk_bp > rows[regular].churn_risk_bp
        for row in (rows[regular], rows[lapsed]):
            assert 0 <= row.churn_risk_bp <= 10_000
            assert row.churn_band == ("low" if row.churn_risk_bp < 3000 else
                                      "medium" if row.churn_risk_bp < 6000 else "high")
            assert row.churn_scored_at == DEFAULT_NOW
        assert (rows[never].churn_risk_bp, rows[never].churn_band, rows[never].churn_explanation) == (None,) * 3


def test_band_cuts_come_from_configuration(app, factory, pos, monkeypatch):
    ids = insert_history(factory, pos, synthetic_program(seed=5, members=60))
    with app.app_context():
        tasks.score_churn()
        risk = db.session.get(Member, ids[0]).churn_risk_bp
        assert 2 <= risk <= 9998
        for cuts, band in (((risk + 1, risk + 2), "low"), ((risk - 1, risk + 1), "medium"),
                           ((risk - 2, risk - 1), "high"), ((risk, risk + 1), "medium")):
            monkeypatch.setitem(app.config, "INSIGHTS_CHURN_RISK_CUTS", [cut / 10_000 for cut in cuts])
            tasks.score_churn()
            db.session.expire_all()
            assert db.session.get(Member, ids[0]).churn_band == band, cuts


def synthetic_program(seed=7, members=240):
    """Two years of purchases: steady buyers every 20-60 days, and buyers who stopped at a random day."""
    chance = random.Random(seed)
    histories = []
    for _ in range(members):
        gap, start = chance.randint(20, 60), chance.randint(100, 700)
        stop = 0 if chance.random() < 0.5 else chance.randint(10, start)
        histories.append(list(range(start, stop, -gap)) or [start])
    return histories


def test_enough_history_trains_the_default_model(app, factory, pos):
    histories = synthetic_program()
    ids = insert_history(factory, pos, histories)
    recency = {member_id: min(days) for member_id, days in zip(ids, histories, strict=True)}
    with app.app_context():
        result = tasks.score_churn()
        risk = dict(db.session.execute(sa.select(Member.id, Member.churn_risk_bp).where(Member.id.in_(ids))).all())

    assert result["model"] == "LogisticChurn" and result["scored"] == len(ids)
    assert sum(result["bands"].values()) == len(ids)
    # Members silent for over a year are riskier than any who bought this month.
    silent = [risk[i] for i in ids if recency[i] > 365]
    fresh = [risk[i] for i in ids if recency[i] < 30]
    assert silent and fresh and min(silent) > max(fresh)


def test_erased_members_lose_their_scores_on_the_next_run(app, factory, pos, clock):
    number = factory.member()
    buy(pos, number, 20, 5000)
    buy(pos, number, 5, 5000)
    with app.app_context():
        tasks.rescore_all()
        assert member(number).churn_band is not None and member(number).rfm_segment is not None
        erase_member(db.session, member(number), now=DEFAULT_NOW, channel="staff")
        db.session.commit()
        clock.advance(hours=1)  # runs happen at distinct times; see churn.score_churn
        tasks.rescore_all()
        row = member(number)
        assert (row.churn_risk_bp, row.churn_band, row.churn_explanation) == (None, None, None)
        assert (row.rfm_segment, row.rfm_code) == (None, None)


def test_runs_are_recorded_with_time_and_duration(app, factory, pos):
    buy(pos, factory.member(), 3, 5000, lines=[{"sku": "A", "amount": 2500}, {"sku": "B", "amount": 2500}])
    with app.app_context():
        detail = tasks.rescore_all()
        runs = db.session.scalars(sa.select(JobRun).order_by(JobRun.id)).all()

    assert [run.job for run in runs] == ["rfm", "churn", "crosssell"]
    for run in runs:
        assert run.status == "succeeded" and run.started_at == DEFAULT_NOW
        assert run.duration_ms >= 0 and run.finished_at >= run.started_at and run.error is None
    assert runs[0].detail["buyers"] == 1 and detail["rfm"]["buyers"] == 1
    assert runs[2].detail == {"rules": {"sku": 0, "category": 0}}


def test_a_failing_run_is_recorded_as_failed_and_changes_nothing(app, factory, pos, monkeypatch):
    buy(pos, factory.member(), 3, 5000)
    monkeypatch.setitem(app.config, "INSIGHTS_RFM_WINDOW_DAYS", 0)
    with app.app_context():
        with pytest.raises(ValueError, match="at least one day"):
            tasks.score_rfm()
        run = db.session.scalar(sa.select(JobRun))
        assert run.status == "failed" and "at least one day" in run.error and run.duration_ms >= 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(RfmSnapshot)) == 0


def test_an_abandoned_run_is_marked_failed_by_the_next(app, clock):
    with app.app_context():
        db.session.add(JobRun(job="rfm", status="running", started_at=DEFAULT_NOW - timedelta(hours=5), detail={}))
        db.session.commit()
        tasks.score_rfm()
        statuses = db.session.execute(sa.select(JobRun.status, JobRun.error).order_by(JobRun.id)).all()
    assert statuses[0][0] == "failed" and statuses[0][1].startswith("abandoned")
    assert statuses[1] == ("succeeded", None)


def test_rescoring_twice_gives_the_same_results(app, factory, pos):
    insert_history(factory, pos, synthetic_program(seed=3, members=80), prefix="T")
    lines = [{"sku": "A", "amount": 100}, {"sku": "B", "amount": 100}]
    for _ in range(5):
        buy(pos, None, 2, 200, lines=lines)
    scores = sa.select(Member.id, Member.rfm_code, Member.rfm_segment, Member.churn_risk_bp, Member.churn_band,
                       Member.churn_explanation).order_by(Member.id)
    rules = sa.select(AssociationRule.level, AssociationRule.antecedent, AssociationRule.consequent,
                      AssociationRule.together).order_by(AssociationRule.level, AssociationRule.antecedent)
    with app.app_context():
        tasks.rescore_all()
        first = (db.session.execute(scores).all(), db.session.execute(rules).all())
        tasks.rescore_all()
        second = (db.session.execute(scores).all(), db.session.execute(rules).all())
        snapshots = db.session.scalar(sa.select(sa.func.count()).select_from(RfmSnapshot))
    assert first == second and len(first[1]) == 2 and snapshots == 1


def test_the_nightly_jobs_are_scheduled_on_the_scoring_queue():
    insights = {job.name: job for job in PERIODIC_JOBS if job.func.startswith("loyalty.insights.")}
    assert set(insights) == {"score-rfm", "score-churn", "compute-crosssell"}
    assert "scoring" in QUEUES
    for job in insights.values():
        module, _, name = job.func.rpartition(".")
        assert callable(getattr(importlib.import_module(module), name))
        assert job.queue == "scoring"


def test_rescore_now_runs_inline_without_redis(app, factory, pos):
    if app.config["REDIS_URL"]:
        pytest.skip("inline execution is the no-Redis path")
    buy(pos, factory.member(), 3, 5000)
    with app.app_context():
        result = tasks.request_rescore()
        assert set(result) == {"rfm", "churn", "crosssell"}
        assert db.session.scalar(sa.select(sa.func.count()).select_from(JobRun)) == 3


def test_rescore_now_queues_one_job_on_the_scoring_queue(app, factory, pos):
    if not app.config["REDIS_URL"]:
        pytest.skip("needs --redis")
    from rq import Queue, SimpleWorker

    from loyalty.jobs import redis_connection

    buy(pos, factory.member(), 3, 5000)
    with app.app_context():
        job = tasks.request_rescore()
        tasks.request_rescore()
        queue = Queue("scoring", connection=redis_connection())
        assert job.id == tasks.RESCORE_JOB_ID and queue.count == 1
        SimpleWorker([queue], connection=redis_connection()).work(burst=True)
        assert [run.status for run in db.session.scalars(sa.select(JobRun).order_by(JobRun.id))] == ["succeeded"] * 3


def test_bulk_explanations_read_exactly_as_churn_models_churn_facts():
    chance = np.random.default_rng(11)
    recency = chance.integers(0, 900, 500).astype(float)
    frequency = chance.integers(1, 30, 500)
    gaps = np.where(chance.random(500) < 0.3, np.nan, chance.random(500) * 200)
    gaps[:4] = [0.5, 1.5, 1.0, 2.5]  # halves round to even in both

    assert churn.explain_all(recency, frequency, gaps) == [
        churn_facts(r, f, None if np.isnan(g) else g) for r, f, g in zip(recency, frequency, gaps, strict=True)]
