"""Staff sign-in and sign-out (/staff/login, /staff/logout). The console itself is `members.staff_views`."""

import unicodedata
from urllib.parse import unquote

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user
from werkzeug.routing import BuildError

from loyalty.auth.services import authenticate_staff, end_sessions
from loyalty.extensions import db
from loyalty.web import throttle
from loyalty.web.access import StaffIdentity
from loyalty.web.forms import LoginForm

staff_auth = Blueprint("staff_auth", __name__, url_prefix="/staff")


@staff_auth.route("/login", methods=["GET", "POST"])
@throttle.sign_in_limits("staff")
def login():
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        user = authenticate_staff(db.session, form.email.data, form.password.data)
        if user is not None:
            # A fresh session on every sign-in: nothing from before it (or planted in it) survives.
            session.clear()
            login_user(StaffIdentity(user))
            return redirect(safe_next_url(request.args.get("next")) or _console_home(user.role))
        throttle.mark_failed()
        error = _("Wrong email or password.")
    elif request.method == "POST":
        throttle.mark_failed()
    return render_template("staff_auth/login.html", form=form, error=error, signed_in=_signed_in_staff())


@staff_auth.route("/logout", methods=["POST"])
def logout():
    if current_user.is_authenticated and current_user.kind == "staff":
        # The cookie itself would stay valid (it is signed, not stored): the account's epoch ends it.
        end_sessions(current_user.user)
        db.session.commit()
    logout_user()
    session.clear()
    flash(_("You have signed out."), "info")
    return redirect(url_for("staff_auth.login"))


@staff_auth.errorhandler(429)
def too_many_attempts(error):
    seconds = throttle.retry_after_seconds(error)
    message = f"{error.description} {throttle.wait_message(seconds)}"
    page = render_template("staff_auth/login.html", form=LoginForm(), error=message, signed_in=_signed_in_staff())
    return page, 429, {"Retry-After": str(seconds)}


def _signed_in_staff():
    return current_user.user if current_user.is_authenticated and current_user.kind == "staff" else None


def _console_home(role: str = "cashier") -> str:
    """Where each role works: marketers in the marketing console, the others at the till."""
    endpoint = "marketing.dashboard" if role == "marketer" else "staff.scan"
    try:
        return url_for(endpoint)
    except BuildError:
        return "/marketing/" if role == "marketer" else "/staff/"


def safe_next_url(target: str | None) -> str | None:
    """`next` only when it is a path on this site, else None (the caller's default page).

    A browser drops tabs and newlines from a Location and reads a backslash as a slash, so
    "/<tab>/evil.example/" would take it to //evil.example/; and a CR/LF in a header is a server error.
    Hence: a single leading "/", no backslash, no whitespace or control character anywhere, checked
    again after each round of percent-decoding (a %09 is a tab to whoever decodes it next)."""
    if not target:
        return None
    seen = None
    form = target
    while form != seen:
        if not _plain_local_path(form):
            return None
        seen, form = form, unquote(form)
    return target


def _plain_local_path(path: str) -> bool:
    return (path.startswith("/") and path[1:2] != "/" and "\\" not in path
            and not any(char.isspace() or unicodedata.category(char).startswith("C") for char in path))
