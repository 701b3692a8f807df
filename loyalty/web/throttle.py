"""Sign-in throttling with Flask-Limiter: per account (the email typed) and per address; and limits on
sign-ups and password-reset requests.

Only failed attempts count (`deduct_when`), so people who sign in correctly never use up a limit, and
the tills of one store behind one address do not lock each other out. Once a limit is reached, every
attempt on that account (or from that address) is refused until the window passes, even with the
right password: that is what makes guessing slow. Counters live in Redis when configured, and in the
database without Redis or while it is unreachable (loyalty/rate_limits.py): every web
process shares them either way. The address is the client's as ProxyFix gives it behind a trusted
reverse proxy (TRUSTED_PROXY_HOPS).
"""

import hashlib
import time

from flask import current_app, g, request
from flask_babel import gettext as _
from flask_babel import ngettext

from loyalty.extensions import limiter
from loyalty.rate_limits import SHARED_KEY_PREFIX


def account_key(kind: str):
    """Key function: the normalised email of the form, hashed (counters never hold addresses in clear)."""

    def key() -> str:
        email = (request.form.get("email") or "").strip().lower()
        return f"{SHARED_KEY_PREFIX}{kind}-account:" + hashlib.sha256(email.encode()).hexdigest()[:32]

    return key


def address_key() -> str:
    return f"{SHARED_KEY_PREFIX}address:" + (request.remote_addr or "unknown")


def mark_failed() -> None:
    """Called by a sign-in view when the credentials were wrong: that attempt counts."""
    g.sign_in_failed = True


def _failed(response) -> bool:
    return bool(g.get("sign_in_failed"))


def _account_message() -> str:
    return _("Too many failed sign-in attempts for this account. Please wait and try again later.")


def _address_message() -> str:
    return _("Too many failed sign-in attempts from your network. Please wait and try again later.")


def sign_in_limits(kind: str):
    """Decorator: the per-account and per-address limits of a sign-in view (POST only)."""
    per_account = limiter.limit(
        lambda: current_app.config["LOGIN_LIMIT_PER_ACCOUNT"], key_func=account_key(kind), methods=["POST"],
        deduct_when=_failed, error_message=_account_message, scope=f"{kind}-sign-in-account",
    )
    per_address = limiter.limit(
        lambda: current_app.config["LOGIN_LIMIT_PER_ADDRESS"], key_func=address_key, methods=["POST"],
        deduct_when=_failed, error_message=_address_message, scope=f"{kind}-sign-in-address",
    )
    return lambda view: per_account(per_address(view))


def reset_request_limits():
    """Decorator: limits on asking for a password-reset email; every request counts."""
    per_account = limiter.limit(
        lambda: current_app.config["PASSWORD_RESET_LIMIT_PER_ACCOUNT"], key_func=account_key("reset"),
        methods=["POST"], error_message=_account_message_reset, scope="password-reset-account",
    )
    per_address = limiter.limit(
        lambda: current_app.config["PASSWORD_RESET_LIMIT_PER_ADDRESS"], key_func=address_key,
        methods=["POST"], error_message=_address_message_reset, scope="password-reset-address",
    )
    return lambda view: per_account(per_address(view))


def _account_message_reset() -> str:
    return _("Too many password reset requests for this account. Please wait and try again later.")


def _address_message_reset() -> str:
    return _("Too many password reset requests from your network. Please wait and try again later.")


def signup_limits():
    """Decorator: a limit on sign-up attempts per address; every POST counts, so the form can neither
    mass-create accounts nor be used to probe which emails and phones already have one."""
    return limiter.limit(
        lambda: current_app.config["SIGNUP_LIMIT_PER_ADDRESS"], key_func=address_key, methods=["POST"],
        error_message=_signup_message, scope="member-sign-up-address",
    )


def _signup_message() -> str:
    return _("Too many sign-ups from your network. Please wait and try again later.")


def retry_after_seconds(error) -> int:
    """Seconds until the breached limit lets attempts through again (for Retry-After and the message)."""
    current = limiter.current_limit
    if current is not None and current.breached:
        return max(1, round(current.reset_at - time.time()))
    try:
        return max(1, int(error.limit.limit.get_expiry()))
    except AttributeError:
        return 60


def wait_message(seconds: int) -> str:
    # To the nearest minute: the store's clock rounds up a second now and then.
    minutes = max(1, (seconds + 30) // 60)
    return ngettext("You can try again in %(num)d minute.", "You can try again in %(num)d minutes.", minutes)
