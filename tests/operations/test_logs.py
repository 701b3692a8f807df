"""Request ids and structured logs (loyalty/logs.py): an id on every response and in every problem
body, the client's own when it is sane, and JSON log lines on stderr that carry it."""

import json
import re

import pytest

HEX_ID = re.compile(r"[0-9a-f]{32}")


def test_a_sane_incoming_request_id_is_echoed(client):
    response = client.get("/healthz", headers={"X-Request-Id": "till-7:Root=1-5f84c7a9/abc_DEF.9"})
    assert response.headers["X-Request-Id"] == "till-7:Root=1-5f84c7a9/abc_DEF.9"


@pytest.mark.parametrize("incoming", [None, "", "two words", "x" * 129, "<script>", 'quote"d'])
def test_a_request_id_is_made_when_none_or_no_sane_one_comes(client, incoming):
    headers = {"X-Request-Id": incoming} if incoming is not None else {}
    made = client.get("/healthz", headers=headers).headers["X-Request-Id"]
    assert HEX_ID.fullmatch(made)
    assert client.get("/healthz", headers=headers).headers["X-Request-Id"] != made


def test_every_kind_of_response_carries_the_request_id(client, pos):
    responses = {
        "html page": client.get("/portal/login"),
        "html 404": client.get("/no/such/page"),
        "api json": pos.get("/members/lookup?code=nobody"),
        "api 401": client.get("/api/v1/members/123"),
        "api 404": pos.get("/no/such/resource"),
        "redirect": client.get("/"),
    }
    for kind, response in responses.items():
        assert HEX_ID.fullmatch(response.headers.get("X-Request-Id", "")), kind


def test_problem_bodies_carry_the_request_id(client, pos):
    refused = pos.post("/transactions", json={"external_id": "S-1"}, headers={"X-Request-Id": "vendor-ticket-42"})
    assert refused.status_code == 422 and refused.mimetype == "application/problem+json"
    assert refused.get_json()["request_id"] == "vendor-ticket-42"
    assert refused.headers["X-Request-Id"] == "vendor-ticket-42"

    not_found = client.get("/api/v1/members/123")  # a 401 from Werkzeug, turned into a problem
    assert not_found.get_json()["request_id"] == not_found.headers["X-Request-Id"]
    unknown = pos.get("/no/such/resource")
    assert unknown.status_code == 404
    assert unknown.get_json()["request_id"] == unknown.headers["X-Request-Id"]


def json_lines(text: str) -> list[dict]:
    """Every line of stderr must be one JSON object."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_log_lines_are_json_objects_carrying_the_request_id(make_app, capsys):
    app = make_app(LOG_FORMAT="json")
    client = app.test_client()
    capsys.readouterr()
    response = client.get("/healthz", headers={"X-Request-Id": "trace-me-1"})
    lines = json_lines(capsys.readouterr().err)
    access = [line for line in lines if line["logger"] == "loyalty.access"]
    assert len(access) == 1
    assert access[0]["request_id"] == response.headers["X-Request-Id"] == "trace-me-1"
    assert access[0]["level"] == "INFO"
    assert access[0]["method"] == "GET" and access[0]["path"] == "/healthz" and access[0]["status"] == 200
    assert isinstance(access[0]["duration_ms"], float)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", access[0]["time"])


def test_an_unhandled_error_is_logged_with_its_traceback_and_answered_with_the_id(make_app, capsys):
    app = make_app(LOG_FORMAT="json", PROPAGATE_EXCEPTIONS=False)

    @app.route("/boom")
    def boom():
        raise RuntimeError("the till exploded")

    capsys.readouterr()
    response = app.test_client().get("/boom")
    assert response.status_code == 500
    lines = json_lines(capsys.readouterr().err)
    errors = [line for line in lines if line["level"] == "ERROR"]
    assert len(errors) == 1
    assert errors[0]["request_id"] == response.headers["X-Request-Id"]
    assert "RuntimeError: the till exploded" in errors[0]["exception"]
    assert "Traceback" in errors[0]["exception"]


def test_log_format_defaults_to_json_outside_development_and_text_in_it(make_app, capsys):
    make_app(ENVIRONMENT="production", PUBLIC_BASE_URL="https://loyalty.example.com").test_client().get("/healthz")
    assert json_lines(capsys.readouterr().err)[-1]["logger"] == "loyalty.access"
    make_app(ENVIRONMENT="development").test_client().get("/healthz", headers={"X-Request-Id": "text-1"})
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert not line.startswith("{") and "[text-1]" in line and "GET /healthz 200" in line
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        make_app(LOG_FORMAT="xml")
