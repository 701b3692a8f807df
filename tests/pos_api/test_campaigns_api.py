"""The campaign endpoints (docs/api.md "Campaigns"): create, launch, read the counts and the audience,
end; what is refused, and who may call them."""

import pytest

from tests.campaigns.helpers import assert_problem
from tests.campaigns.test_campaigns import launch, saved_segment


@pytest.fixture
def crm(factory):
    return factory.api_client(scope="manage", name="crm")


@pytest.fixture
def segment_id(app, factory):
    return saved_segment(app, [factory.member() for _ in range(30)])


def offer_id(crm) -> int:
    response = crm.post("/offers", json={"name": "10 off", "kind": "amount_off", "value": 1000})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def body(segment, **fields) -> dict:
    return {"name": "Win back", "segment_id": segment, "control_percent": 20,
            "action": {"kind": "bonus_points", "points": 100}, **fields}


def test_a_campaign_is_created_as_a_draft_launched_read_and_ended(app, crm, segment_id):
    created = crm.post("/campaigns", json=body(segment_id, action={"kind": "coupon", "offer_id": offer_id(crm)}))
    assert created.status_code == 201, created.get_json()
    campaign = created.get_json()
    assert campaign["status"] == "draft"
    assert campaign["conversion_window_days"] == 30 and campaign["trigger"] is None
    assert campaign["counts"] == {"members": 0, "treatment": 0, "control": 0, "acted": 0}
    assert crm.get(f"/campaigns/{campaign['id']}").get_json() == campaign

    running = launch(app, crm, campaign["id"])
    assert running["status"] == "running"
    counts = running["counts"]
    assert counts["members"] == 30 == counts["treatment"] + counts["control"]
    assert counts["acted"] == counts["treatment"]

    again = crm.post(f"/campaigns/{campaign['id']}/launch")
    assert again.status_code == 202 and again.get_json() == running

    ended = crm.post(f"/campaigns/{campaign['id']}/end")
    assert ended.status_code == 200
    assert ended.get_json()["status"] == "ended" and ended.get_json()["ended_at"]
    assert crm.post(f"/campaigns/{campaign['id']}/end").get_json() == ended.get_json()


def test_the_audience_is_listed_page_by_page_and_by_arm(app, crm, segment_id):
    campaign = crm.post("/campaigns", json=body(segment_id, control_percent=50)).get_json()
    counts = launch(app, crm, campaign["id"])["counts"]

    seen, cursor = [], None
    while True:
        page = crm.get(f"/campaigns/{campaign['id']}/members", query_string={"limit": 7, **(
            {"cursor": cursor} if cursor else {})}).get_json()
        seen += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 30 == len({row["member_no"] for row in seen})
    control = crm.get(f"/campaigns/{campaign['id']}/members", query_string={"arm": "control", "limit": 200})
    rows = control.get_json()["data"]
    assert len(rows) == counts["control"]
    assert all(row["arm"] == "control" and row["acted_at"] is None and row["points_entry_id"] is None
               for row in rows)
    treatment = [row for row in seen if row["arm"] == "treatment"]
    assert len(treatment) == counts["treatment"]
    assert all(row["acted_at"] and row["points_entry_id"] for row in treatment)


@pytest.mark.parametrize("fields, field", [
    ({"control_percent": 51}, "control_percent"),
    ({"control_percent": -1}, "control_percent"),
    ({"conversion_window_days": 0}, "conversion_window_days"),
    ({"segment_id": 999_999}, "segment_id"),
    ({"action": {"kind": "bonus_points", "points": 0}}, "action"),
    ({"action": {"kind": "coupon"}}, "action"),
    ({"action": {"kind": "coupon", "offer_id": 999_999}}, "action"),
    ({"action": {"kind": "message", "channel": "email", "template": "welcome"}}, "action"),
    ({"action": {"kind": "teleport"}}, "action"),
    ({"trigger": {"on": "birthday"}}, "trigger"),
    ({"surprise": True}, "surprise"),
])
def test_a_campaign_that_breaks_a_rule_is_refused_naming_the_field(crm, segment_id, fields, field):
    problem = assert_problem(crm.post("/campaigns", json=body(segment_id, **fields)), 422, "validation-error")
    assert field in problem["errors"], problem


def test_the_message_action_says_it_comes_with_the_outbox(crm, segment_id):
    problem = assert_problem(crm.post("/campaigns", json=body(
        segment_id, action={"kind": "message", "channel": "sms", "template": "hello"})), 422, "validation-error")
    assert "comes with the outbox" in problem["errors"]["action"][0]


def test_campaigns_need_the_manage_scope_and_a_known_id(crm, pos, segment_id):
    assert_problem(pos.post("/campaigns", json=body(segment_id)), 403, "forbidden")
    campaign = crm.post("/campaigns", json=body(segment_id)).get_json()
    assert_problem(pos.get(f"/campaigns/{campaign['id']}"), 403, "forbidden")
    assert_problem(pos.post(f"/campaigns/{campaign['id']}/launch"), 403, "forbidden")
    assert_problem(crm.get("/campaigns/999999"), 404, "not-found")
    assert_problem(crm.post("/campaigns/999999/launch"), 404, "not-found")
    assert_problem(crm.get(f"/campaigns/{campaign['id']}/members", query_string={"arm": "both"}), 422,
                   "validation-error")


def test_creating_with_an_idempotency_key_twice_creates_one_campaign(crm, segment_id):
    headers = {"Idempotency-Key": "campaign-1"}
    first = crm.post("/campaigns", json=body(segment_id), headers=headers)
    second = crm.post("/campaigns", json=body(segment_id), headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert first.get_json() == second.get_json()
