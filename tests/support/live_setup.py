"""What an operator does before opening, for tests/support/live.py, in one process (each `loyalty`
command would import the whole application again): migrate, then a store, API keys (one per test
that counts or revokes its calls), an admin and a member with a portal password, through the same
services as the CLI and the portal. Configured by the LOYALTY_* environment like the servers; `main`
prints what the tests need as one JSON object."""

import json

import sqlalchemy as sa
from flask_migrate import upgrade

from loyalty import create_app
from loyalty.auth import services
from loyalty.clock import utcnow
from loyalty.extensions import db
from loyalty.members import portal_services
from loyalty.points.program import load_program

PASSWORD = "correct horse battery"
ADMIN_EMAIL = "admin@example.com"
MEMBER_EMAIL = "wang.fang@example.com"
KEYS = {"till": "pos", "crm": "manage", "revoked-till": "pos", "limited-till": "pos", "outage-till": "pos"}


def main() -> None:
    app = create_app()
    with app.app_context():
        upgrade(revision="heads")
        # The runs of tests/support/live_worker.py's probe job, in a table of the tests' own.
        db.session.execute(sa.text("CREATE TABLE live_periodic_runs (id serial PRIMARY KEY, "
                                   "enqueued_at timestamptz NOT NULL)"))
        store = services.create_store(db.session, code="S001", name="Nanjing Road", actor=None)
        keys = {name: services.create_api_client(db.session, name=name, store=store, scope=scope)[1]
                for name, scope in KEYS.items()}
        services.create_staff_user(db.session, email=ADMIN_EMAIL, role="admin", password=PASSWORD)
        member = portal_services.sign_up(db.session, load_program(db.session), name="Wang Fang", email=MEMBER_EMAIL,
                                         password=PASSWORD, now=utcnow())
        db.session.commit()
        print(json.dumps({"keys": keys, "admin_email": ADMIN_EMAIL,
                          "member_email": MEMBER_EMAIL, "member_no": member.member_no, "password": PASSWORD}))
