"""API key authentication and scopes for /api/v1, the per-key rate limits, and no cookie session."""

import hashlib
import logging
from functools import wraps

from flask import current_app, g, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.exceptions import Forbidden, Unauthorized

from loyalty.auth.services import ApiCaller, api_key_use_due, authenticate_api_key, record_api_key_use
from loyalty.clock import utcnow
from loyalty.extensions import db, limiter
from loyalty.rate_limits import SHARED_KEY_PREFIX
from loyalty.request_json import ApiBlueprint

logger = logging.getLogger(__name__)


def _bearer_key() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    return key.strip() if scheme.lower() == "bearer" and key.strip() else None


def authenticate_request() -> None:
    """Blueprint `before_request`: every /api/v1 call but the OpenAPI document needs a live key."""
    key = _bearer_key()
    client = authenticate_api_key(db.session, key) if key else None
    if client is None:
        raise Unauthorized("a valid API key is required: Authorization: Bearer <key>")
    g.api_client = client
    if api_key_use_due(client):
        _record_use(client, utcnow())


def _record_use(client: ApiCaller, now) -> None:
    """Stamp the key's "last used" in a short transaction of its own, committed before the view
    starts: in the view's transaction it would hold the key's row lock until the request commits,
    queueing every till that shares the key. On the request's own connection, never a second one: a
    request holding one connection while it waits for another deadlocks the pool as soon as as many
    requests do so at once as it has connections (tests/operations/test_connection_pool.py). A failed
    stamp is logged and never fails the request; "last used" only needs minutes."""
    try:
        record_api_key_use(db.session, client.id, now)
        db.session.commit()
    except Exception:  # whatever the driver raises: the request goes on without the stamp
        db.session.rollback()
        logger.warning("could not record the use of API client %s", client.id, exc_info=True)


def current_client() -> ApiCaller:
    return g.api_client


def require_scope(scope: str):
    def decorate(view):
        @wraps(view)
        def guarded(*args, **kwargs):
            if not current_client().has_scope(scope):
                raise Forbidden(f"this API key lacks the {scope!r} scope")
            return view(*args, **kwargs)
        return guarded
    return decorate


def rate_limit_key() -> str:
    """Limit per key (hashed, never kept in clear), falling back to the address for keyless calls."""
    key = _bearer_key()
    if key:
        return "key:" + hashlib.sha256(key.encode()).hexdigest()[:32]
    return "addr:" + (request.remote_addr or "unknown")


def api_rate_limit():
    """Requests per key: shared through Redis when configured, else counted by each process."""
    return limiter.shared_limit(lambda: current_app.config["API_RATE_LIMIT"], scope="api-v1",
                                key_func=rate_limit_key)


def failed_lookup_limit():
    """Decorator: the key's failed lookups, shared by every endpoint that names a member or a coupon
    by a code a client could guess (a member number, a phone, a coupon code). Only failures count
    (`mark_failed_lookup`), so a till's ordinary lookups never use it up; once it is reached, every
    lookup of the key is refused until the window passes, or the answers that still came through
    would tell a guessed code from a wrong one. Counted across processes with or without Redis
    (loyalty/rate_limits.py); the key's request limit still applies too."""
    return limiter.shared_limit(lambda: current_app.config["API_FAILED_LOOKUP_LIMIT"],
                                scope="api-v1-failed-lookups", key_func=_failed_lookup_key,
                                deduct_when=_lookup_failed, override_defaults=False)


def mark_failed_lookup() -> None:
    """Called by a view whose code named nothing (or another member's coupon): this request counts."""
    g.failed_lookup = True


def _failed_lookup_key() -> str:
    return SHARED_KEY_PREFIX + rate_limit_key()


def _lookup_failed(response) -> bool:
    return bool(g.get("failed_lookup"))


class NoSessionForApi(SecureCookieSessionInterface):
    """/api/v1 is stateless: a request is its bearer key, never a cookie. API requests get Flask's
    null session, so a staff member's browser cookie means nothing there, no API answer sets a
    cookie, and no request pays for opening and saving one (7-16 % of a small API request's CPU,
    measured in-process)."""

    def open_session(self, app, request):
        if request.path.startswith(app.config["OPENAPI_URL_PREFIX"] + "/"):
            return self.make_null_session(app)
        return super().open_session(app, request)


def resource_blueprint(name: str, url_prefix: str, description: str) -> ApiBlueprint:
    """The blueprint of one /api/v1 resource: every request needs a live key and counts against the
    key's rate limit."""
    blueprint = ApiBlueprint(name, __name__, url_prefix=url_prefix, description=description)
    blueprint.before_request(authenticate_request)
    api_rate_limit()(blueprint)
    return blueprint
