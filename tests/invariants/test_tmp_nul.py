def test_nul(factory, pos):
    for path in ["/members/12%0034", "/members/12%0034/points", "/members/12%0034/coupons", "/transactions/a%00b",
                 "/coupons/a%00b", "/members/lookup?code=a%00b"]:
        r = pos.get(path)
        print(path, r.status_code, r.get_json())
    r = pos.post("/transactions/a%00b/refunds", json={"external_id": "x", "amount": 1})
    print("refund", r.status_code, r.get_json())
    r = pos.post("/transactions", json={"external_id": "x\u0000", "amount": 1, "currency": "CNY", "occurred_at": "2026-11-22T09:00:00+08:00", "coupons": ["a\u0000"]})
    print("sale", r.status_code, r.get_json())
    r = pos.post("/transactions/batch", json={"sales": [{"external_id": "x\u0000", "amount": 1, "currency": "CNY", "occurred_at": "2026-11-22T09:00:00+08:00"}]})
    print("batch", r.status_code, r.get_json())
    r = pos.post("/members", json={"name": "a\u0000", "email": "a@example.com"}, headers={"Idempotency-Key": "k\u0000"})
    print("member", r.status_code, r.get_json())
    r = pos.post("/members", json={"name": "a", "email": "a@example.com"}, headers={"Idempotency-Key": "k\u0000"})
    print("member idem", r.status_code, r.get_json())
