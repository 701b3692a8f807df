def test_sale_earns_points_and_replays(factory, pos):
    member_no = factory.member()
    first = pos.sale(member_no, 12800, external_id="S001-1")
    assert first.status_code == 201, first.get_json()
    body = first.get_json()
    assert body["points_earned"] == 128
    assert body["member"]["points"]["balance"] == 128
    again = pos.sale(member_no, 12800, external_id="S001-1")
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == body


def test_api_requests_have_no_cookie_session(app):
    """/api/v1 is its bearer keys: an API request gets Flask's null session, so a browser's session
    cookie is not read there. The portal and the console keep their signed cookie session."""
    from flask import session
    from flask.sessions import NullSession

    with app.test_request_context("/api/v1/members/1000000018", headers={"Cookie": "session=forged"}):
        assert isinstance(session, NullSession)
    with app.test_request_context("/portal/"):
        assert not isinstance(session, NullSession)
