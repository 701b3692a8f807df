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
