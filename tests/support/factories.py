"""Small helpers that build test data through the real services and the real HTTP API."""

import itertools
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from loyalty.auth.models import Store
from loyalty.auth.services import create_api_client, create_staff_user
from loyalty.extensions import db
from loyalty.members.models import Member
from loyalty.members.services import enrol_member
from loyalty.points.program import load_program

_counter = itertools.count(1)


@dataclass
class Pos:
    """An API client as a POS sees it: its key, ready-made headers, and a test client to call with."""

    key: str
    client_id: int
    http: object

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.key}"}

    def get(self, path, **kwargs):
        return self.http.get("/api/v1" + path, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

    def post(self, path, json=None, **kwargs):
        return self.http.post("/api/v1" + path, json=json, headers={**self.headers, **kwargs.pop("headers", {})},
                              **kwargs)

    def sale(self, member_no: str | None, amount: int, *, occurred_at: str = "2026-11-22T10:00:00+08:00",
             external_id: str | None = None, **fields):
        body = {"external_id": external_id or f"S-{next(_counter)}", "occurred_at": occurred_at,
                "currency": "CNY", "amount": amount, **fields}
        if member_no:
            body["member"] = member_no
        return self.post("/transactions", json=body)


class Factory:
    def __init__(self, app, clock):
        self.app = app
        self.clock = clock

    def store(self, code: str = "S001") -> int:
        with self.app.app_context():
            store = db.session.scalar(sa.select(Store).where(Store.code == code))
            if store is None:
                store = Store(code=code, name=f"Store {code}")
                db.session.add(store)
                db.session.commit()
            return store.id

    def api_client(self, store_code: str = "S001", scope: str = "pos", name: str = "till") -> Pos:
        self.store(store_code)
        with self.app.app_context():
            store = db.session.scalar(sa.select(Store).where(Store.code == store_code))
            client, key = create_api_client(db.session, name=name, store=store, scope=scope)
            db.session.commit()
            return Pos(key=key, client_id=client.id, http=self.app.test_client())

    def member(self, name: str = "Wang Fang", email: str | None = None, phone: str | None = None) -> str:
        """Enrol a member through the service; returns the member number."""
        number = next(_counter)
        with self.app.app_context():
            member = enrol_member(db.session, load_program(db.session), name=name,
                                  email=email or f"member{number}@example.com", phone=phone, now=self.clock())
            db.session.commit()
            return member.member_no

    def staff(self, email: str, role: str, password: str = "correct horse battery") -> int:
        self.store()
        with self.app.app_context():
            store = db.session.scalar(sa.select(Store).order_by(Store.id))
            user = create_staff_user(db.session, email=email, role=role, password=password, store=store)
            db.session.commit()
            return user.id

    def member_row(self, member_no: str) -> Member:
        """A detached snapshot of the member row, read fresh."""
        with self.app.app_context():
            member = db.session.scalar(sa.select(Member).where(Member.member_no == member_no))
            db.session.expunge(member)
            return member


def iso(value: datetime) -> str:
    return value.isoformat()
