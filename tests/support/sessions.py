"""Signing a test client in by its session, as the sign-in views leave it (no password round trip)."""

from loyalty.auth.models import StaffUser
from loyalty.extensions import db
from loyalty.members.models import Member
from loyalty.web.access import MemberIdentity, StaffIdentity

KINDS = {"staff": (StaffUser, StaffIdentity), "member": (Member, MemberIdentity)}


def plant_identity(app, http, identity: str | None) -> None:
    """`identity` is "staff:<id>" or "member:<id>"; None signs the client out."""
    with http.session_transaction() as session:
        session.pop("_user_id", None)
        if identity:
            session["_user_id"] = session_id(app, identity)
            session["_fresh"] = True


def session_id(app, identity: str) -> str:
    """What Flask-Login keeps for the account: its kind, id and credential stamp (auth/access.py)."""
    kind, _, raw_id = identity.partition(":")
    model, wrapper = KINDS[kind]
    with app.app_context():
        account = db.session.get(model, int(raw_id))
        return wrapper(account).get_id() if account is not None else f"{identity}:"
