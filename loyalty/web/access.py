"""Who is signed in, and who may see what.

Staff and members both sign in with Flask-Login; the session stores "staff:<id>:<stamp>" or
"member:<id>:<stamp>" so the two kinds of account can never be confused. The stamp is derived from the
account's password hash and its session epoch, so a new password (changed, or set by a reset link) ends
every other session and remember-me cookie of that account, and so does signing out or being disabled
(`auth.services.end_sessions` bumps the epoch): a cookie copied before then opens nothing afterwards.
Without a server-side session store this is per account: signing out on one device signs out the
others too. Every staff view names the roles it allows; every portal view
serves only the signed-in member's own data.
"""

import hashlib
import hmac
from functools import wraps

from flask import abort, current_app, redirect, request, url_for
from flask_login import current_user

from loyalty.auth.models import StaffUser
from loyalty.extensions import db, login_manager
from loyalty.members.models import Member


class _Identity:
    """What Flask-Login needs of a signed-in account; `kind` keeps staff and member ids apart."""

    kind = ""
    is_authenticated = True
    is_anonymous = False

    def __init__(self, account):
        self.account = account

    def get_id(self) -> str:
        return f"{self.kind}:{self.account.id}:{credential_stamp(self.account)}"


def credential_stamp(account: StaffUser | Member) -> str:
    """A short keyed digest of the password hash (which changes, salt and all, with every new password)
    and of the session epoch (which `auth.services.end_sessions` bumps)."""
    key = current_app.config["SECRET_KEY"].encode()
    credential = f"{account.password_hash or ''}:{account.session_epoch or 0}"
    return hmac.new(key, credential.encode(), hashlib.sha256).hexdigest()[:16]


class StaffIdentity(_Identity):
    """Flask-Login wrapper around a StaffUser."""

    kind = "staff"

    @property
    def user(self) -> StaffUser:
        return self.account

    @property
    def is_active(self) -> bool:
        return self.account.active


class MemberIdentity(_Identity):
    """Flask-Login wrapper around a Member. Erased and suspended members are not active."""

    kind = "member"

    @property
    def member(self) -> Member:
        return self.account

    @property
    def is_active(self) -> bool:
        return self.account.status == "active"


@login_manager.user_loader
def load_identity(identity: str):
    kind, raw_id, stamp = (identity.split(":") + ["", ""])[:3]
    if not raw_id.isdigit():
        return None
    if kind == "staff":
        user = db.session.get(StaffUser, int(raw_id))
        found = StaffIdentity(user) if user and user.active else None
    elif kind == "member":
        member = db.session.get(Member, int(raw_id))
        found = MemberIdentity(member) if member and member.status == "active" else None
    else:
        return None
    # A session from before the account's latest password is over.
    if found is None or not hmac.compare_digest(stamp, credential_stamp(found.account)):
        return None
    return found


def _return_path() -> str | None:
    # Only a GET can be repeated after signing in; a refused POST returns to where the form was.
    return request.full_path if request.method == "GET" else None


def staff_required(*roles: str):
    """Allow signed-in staff whose role is one of `roles` (any role when none are named)."""

    def decorate(view):
        @wraps(view)
        def guarded(*args, **kwargs):
            if not current_user.is_authenticated or getattr(current_user, "kind", None) != "staff":
                return redirect(url_for("staff_auth.login", next=_return_path()))
            if roles and current_user.user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return guarded

    return decorate


def member_required(view):
    """Allow a signed-in member; the view must read only `current_member()`'s data."""

    @wraps(view)
    def guarded(*args, **kwargs):
        if not current_user.is_authenticated or getattr(current_user, "kind", None) != "member":
            return redirect(url_for("portal.login", next=_return_path()))
        return view(*args, **kwargs)

    return guarded


def current_staff() -> StaffUser:
    return current_user.user


def current_member() -> Member:
    return current_user.member
