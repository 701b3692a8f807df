"""/api/v1/segments (docs/api.md "Segments"): save, preview, read, list members, evaluate again; invalid
rules answered as validation errors naming what is wrong; the nightly re-evaluation job."""

import pytest
import sqlalchemy as sa

from loyalty.campaigns.segment_models import Segment, SegmentChange
from loyalty.campaigns.segment_tasks import evaluate_segments
from loyalty.extensions import db
from loyalty.jobs import PERIODIC_JOBS
from tests.campaigns.helpers import assert_problem

BOUGHT = {"field": "purchases", "op": ">=", "value": 1}


@pytest.fixture
def manage(factory):
    return factory.api_client(scope="manage", name="crm")


@pytest.fixture
def shoppers(factory, pos):
    """Three members; the first two have bought."""
    numbers = [factory.member() for _ in range(3)]
    for number in numbers[:2]:
        assert pos.sale(number, 5000).status_code == 201
    return numbers


def create(manage, rule, name="Buyers", **kwargs):
    return manage.post("/segments", json={"name": name, "rule": rule}, **kwargs)


def test_a_segment_is_saved_evaluated_at_once_and_read_back(manage, shoppers, clock):
    response = create(manage, BOUGHT)

    assert response.status_code == 201, response.get_json()
    segment = response.get_json()
    assert segment["name"] == "Buyers" and segment["rule"] == BOUGHT
    assert segment["member_count"] == 2
    assert segment["evaluated_at"] == clock().strftime("%Y-%m-%dT%H:%M:%SZ")
    assert manage.get(f"/segments/{segment['id']}").get_json() == segment


def test_preview_counts_and_samples_without_saving(manage, shoppers, app):
    response = manage.post("/segments/preview", json={"rule": {"not": BOUGHT}})

    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"member_count": 1, "sample": [shoppers[2]]}
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Segment)) == 0


def test_members_are_paginated_by_cursor(manage, shoppers):
    segment_id = create(manage, {"all": []}).get_json()["id"]

    first = manage.get(f"/segments/{segment_id}/members?limit=2").get_json()
    second = manage.get(f"/segments/{segment_id}/members?limit=2&cursor={first['next_cursor']}").get_json()

    assert first["data"] + second["data"] == shoppers
    assert second["next_cursor"] is None
    assert_problem(manage.get(f"/segments/{segment_id}/members?cursor=nope"), 422, "validation-error")


def test_evaluate_on_demand_records_who_entered(manage, shoppers, pos, app):
    segment_id = create(manage, BOUGHT).get_json()["id"]
    assert pos.sale(shoppers[2], 100).status_code == 201

    response = manage.post(f"/segments/{segment_id}/evaluate")

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["member_count"] == 3
    assert manage.get(f"/segments/{segment_id}/members").get_json()["data"] == shoppers
    with app.app_context():
        changes = db.session.execute(sa.select(SegmentChange.change, sa.func.count())
                                     .where(SegmentChange.segment_id == segment_id)
                                     .group_by(SegmentChange.change)).all()
    assert dict(changes) == {"entered": 3}


@pytest.mark.parametrize("rule, key, named", [
    ({"field": "shoe_size", "op": "=", "value": 42}, "rule.field", "shoe_size"),
    ({"field": "spend", "op": "~", "value": 1}, "rule.op", "~"),
    ({"all": [BOUGHT, {"field": "spend", "op": ">", "value": "lots"}]}, "rule.all[1].value", "spend"),
    ({"field": "in_segment", "op": "=", "value": 999999}, "rule", "999999"),
])
def test_an_invalid_rule_is_a_validation_error_naming_it(manage, rule, key, named):
    for response in (create(manage, rule), manage.post("/segments/preview", json={"rule": rule})):
        problem = assert_problem(response, 422, "validation-error")
        assert named in problem["errors"][key][0], problem


def test_in_segment_reads_a_saved_segment(manage, shoppers):
    buyers = create(manage, BOUGHT).get_json()["id"]

    response = create(manage, {"field": "in_segment", "op": "!=", "value": buyers}, name="Not buyers")

    assert response.status_code == 201, response.get_json()
    assert manage.get(f"/segments/{response.get_json()['id']}/members").get_json()["data"] == [shoppers[2]]


def test_creation_with_an_idempotency_key_happens_once(manage, shoppers):
    first = create(manage, BOUGHT, headers={"Idempotency-Key": "seg-1"})
    again = create(manage, BOUGHT, headers={"Idempotency-Key": "seg-1"})

    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()


def test_segments_need_the_manage_scope_and_unknown_ids_are_404(pos, manage):
    assert_problem(pos.post("/segments", json={"name": "X", "rule": BOUGHT}), 403, "forbidden")
    assert_problem(pos.post("/segments/preview", json={"rule": BOUGHT}), 403, "forbidden")
    assert_problem(pos.get("/segments/1"), 403, "forbidden")
    assert_problem(manage.get("/segments/12345"), 404, "not-found")
    assert_problem(manage.get("/segments/12345/members"), 404, "not-found")
    assert_problem(manage.post("/segments/12345/evaluate"), 404, "not-found")


def test_the_nightly_job_reevaluates_every_saved_segment(manage, shoppers, pos, app):
    ids = [create(manage, BOUGHT).get_json()["id"], create(manage, {"not": BOUGHT}, name="Never").get_json()["id"]]
    assert pos.sale(shoppers[2], 100).status_code == 201

    with app.app_context():
        assert evaluate_segments() == 2

    assert [manage.get(f"/segments/{segment_id}").get_json()["member_count"] for segment_id in ids] == [3, 0]
    names = [job.name for job in PERIODIC_JOBS]
    assert names.index("evaluate-segments") > names.index("score-churn")
