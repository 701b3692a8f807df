"""Helpers for the coupon tests: offers and coupons made through the real API, as an integrator would,
and fresh reads of the rows behind them."""

import sqlalchemy as sa

from loyalty.campaigns import codes
from loyalty.campaigns.models import Coupon, Offer, OfferMemberUse
from loyalty.extensions import db
from loyalty.sales.models import Transaction


class Campaigns:
    def __init__(self, app, manage):
        self.app = app
        self.manage = manage

    def offer(self, **fields) -> dict:
        body = {"name": "Test offer", "kind": "amount_off", **fields}
        if body["kind"] != "free_item":
            body.setdefault("value", 1000)
        response = self.manage.post("/offers", json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def personal(self, offer_id: int, member_no: str) -> str:
        response = self.manage.post(f"/offers/{offer_id}/coupons", json={"member": member_no})
        assert response.status_code == 201, response.get_json()
        return response.get_json()["code"]

    def generic(self, offer_id: int, limit: int, code: str | None = None) -> str:
        body = {"limit": limit, **({"code": code} if code else {})}
        response = self.manage.post(f"/offers/{offer_id}/coupons", json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["code"]

    def get_offer(self, offer_id: int) -> dict:
        response = self.manage.get(f"/offers/{offer_id}")
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def coupon(self, code: str) -> dict:
        response = self.manage.get(f"/coupons/{code}")
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def row(self, code: str) -> Coupon:
        with self.app.app_context():
            coupon = db.session.scalar(sa.select(Coupon).where(Coupon.code == codes.normalize(code)))
            db.session.expunge(coupon)
            return coupon

    def offer_row(self, offer_id: int) -> Offer:
        with self.app.app_context():
            offer = db.session.get(Offer, offer_id)
            db.session.expunge(offer)
            return offer

    def member_uses(self, offer_id: int) -> int:
        with self.app.app_context():
            return db.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(OfferMemberUse.uses), 0))
                                     .where(OfferMemberUse.offer_id == offer_id))

    def transaction_count(self) -> int:
        with self.app.app_context():
            return db.session.scalar(sa.select(sa.func.count(Transaction.id)))


def assert_problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["type"].rsplit("/", 1)[-1] == slug, body
    return body


def assert_coupon_invalid(response, reason: str) -> dict:
    body = assert_problem(response, 422, "coupon-invalid")
    assert body["detail"].split(":", 1)[0] == reason, body["detail"]
    return body
