"""/api/v1/promotions (docs/api.md "Promotions"): create, list, read with the points given, change, end;
validation problems name the fields; only `manage` keys."""

from datetime import UTC, datetime

import pytest

from tests.pos_api.test_sales_api import assert_problem

WEEKEND_TRIPLE = {"name": "GOLD weekend triple", "multiplier_percent": 300, "tiers": ["GOLD"],
                  "days_of_week": [6, 7], "starts_at": "2026-12-01T00:00:00+08:00",
                  "ends_at": "2027-01-01T00:00:00+08:00", "budget_points": 100_000}


def patch(client, path: str, json: dict):
    return client.http.patch("/api/v1" + path, json=json, headers=client.headers)


@pytest.fixture
def manage(factory):
    return factory.api_client(scope="manage", name="marketing")


@pytest.fixture(autouse=True)
def december(clock):
    clock.set(datetime(2026, 12, 20, tzinfo=UTC))


def test_create_read_list_change_and_end(manage, factory):
    created = manage.post("/promotions", json=WEEKEND_TRIPLE)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["name"] == "GOLD weekend triple"
    assert body["starts_at"] == "2026-11-30T16:00:00Z"
    assert body["hours"] is None and body["points_given"] == 0 and body["ended_at"] is None
    promotion_id = body["id"]

    member_no = factory.member()
    sale = manage.sale(member_no, 10_000, occurred_at="2026-12-02T10:00:00+08:00").get_json()
    assert sale["promotions"] == []
    changed = patch(manage, f"/promotions/{promotion_id}",
                  json={"tiers": None, "days_of_week": None, "hours": {"from": "09:00", "to": "12:00"}})
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["hours"] == {"from": "09:00", "to": "12:00"} and changed.get_json()["tiers"] == []
    sale = manage.sale(member_no, 10_000, occurred_at="2026-12-02T10:00:00+08:00").get_json()
    assert sale["promotions"] == [{"id": promotion_id, "name": "GOLD weekend triple", "points": 200}]
    assert sale["points_earned"] == 300

    assert manage.get(f"/promotions/{promotion_id}").get_json()["points_given"] == 200
    listed = manage.get("/promotions").get_json()
    assert [item["id"] for item in listed["data"]] == [promotion_id] and listed["next_cursor"] is None

    ended = manage.post(f"/promotions/{promotion_id}/end")
    assert ended.status_code == 200 and ended.get_json()["ended_at"] == "2026-12-20T00:00:00Z"
    assert manage.sale(member_no, 10_000, occurred_at="2026-12-02T10:00:00+08:00").get_json()["promotions"] == []
    assert_problem(patch(manage, f"/promotions/{promotion_id}", json={"name": "Again"}), 422, "validation-error")


def test_list_pages_with_a_cursor(manage):
    ids = [manage.post("/promotions", json={"name": f"P{n}", "bonus_points": 1}).get_json()["id"] for n in range(3)]

    first = manage.get("/promotions?limit=2").get_json()
    second = manage.get(f"/promotions?limit=2&cursor={first['next_cursor']}").get_json()

    assert [item["id"] for item in first["data"] + second["data"]] == ids
    assert second["next_cursor"] is None


@pytest.mark.parametrize(("body", "fields"), [
    ({"name": "Nothing"}, {"multiplier_percent"}),
    ({"name": "x", "multiplier_percent": 100}, {"multiplier_percent"}),
    ({"name": "x", "bonus_points": 0, "min_spend": -1}, {"bonus_points", "min_spend"}),
    ({"name": "x", "bonus_points": 1, "days_of_week": [0, 8]}, {"days_of_week"}),
    ({"name": "x", "bonus_points": 1, "hours": {"from": "25:00", "to": "10:00"}}, {"hours"}),
    ({"name": "x", "bonus_points": 1, "hours": {"from": "10:00"}}, {"hours"}),
    ({"name": "x", "bonus_points": 1, "tiers": ["PLATINUM"], "stores": ["S999"]}, {"tiers", "stores"}),
    ({"name": "x", "bonus_points": 1, "channels": ["fax"]}, {"channels"}),
    ({"name": "x", "bonus_points": 1, "starts_at": "2026-12-02T00:00:00Z", "ends_at": "2026-12-01T00:00:00Z"},
     {"ends_at"}),
    ({"name": "x", "bonus_points": 1.5}, {"bonus_points"}),
    ({"name": "x", "bonus_points": 1, "colour": "red"}, {"colour"}),
])
def test_validation_errors_name_the_fields(manage, body, fields):
    problem = assert_problem(manage.post("/promotions", json=body), 422, "validation-error")
    assert set(problem["errors"]) == fields, problem


def test_budget_cannot_go_below_what_was_given(manage, factory):
    promotion_id = manage.post("/promotions", json={"name": "B", "bonus_points": 50}).get_json()["id"]
    manage.sale(factory.member(), 10_000, occurred_at="2026-12-02T10:00:00+08:00")

    problem = assert_problem(patch(manage, f"/promotions/{promotion_id}", json={"budget_points": 49}), 422,
                             "validation-error")
    assert set(problem["errors"]) == {"budget_points"}
    assert patch(manage, f"/promotions/{promotion_id}", json={"budget_points": 50}).status_code == 200


def test_pos_keys_cannot_manage_promotions(pos):
    assert_problem(pos.post("/promotions", json={"name": "x", "bonus_points": 1}), 403, "forbidden")
    assert_problem(pos.get("/promotions"), 403, "forbidden")


def test_unknown_promotion_is_not_found(manage):
    assert_problem(manage.get("/promotions/999"), 404, "not-found")
    assert_problem(manage.post("/promotions/999/end"), 404, "not-found")
