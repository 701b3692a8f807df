"""Accounts: stores, API keys for POS systems and staff users. Keys and passwords are never stored in
clear. Every change is audited (loyalty/audit.py) with `actor` None meaning the operator CLI; like every
service these flush and never commit, and bad input raises a DomainError before anything changes."""

import functools
import hashlib
import re
import secrets
import zoneinfo
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session, object_session, selectinload

from loyalty.audit import record_audit
from loyalty.auth.models import API_SCOPES, STAFF_ROLES, ApiClient, StaffUser, Store
from loyalty.cache import cached, hot_cache, watch
from loyalty.errors import NotFound, ValidationFailed

watch(ApiClient, Store)

KEY_PREFIX = "lk_"
# What lists show of a key and what `api-key revoke` matches against (the stored `key_prefix`).
SHOWN_KEY_CHARS = 10
# A revocation names at least this much of a key, so a slip like "lk_" cannot pick one by accident.
MIN_REVOKE_PREFIX = len(KEY_PREFIX) + 4
# How often a web process records that a key was used (api_key_use_due).
KEY_USE_RESOLUTION = timedelta(minutes=5)
# Every password of the program, staff and members alike (forms show these limits, services enforce them).
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 256
# Store codes are kept upper case ("S001"): what operators type into tills and files.
STORE_CODE = re.compile(r"[A-Z0-9][A-Z0-9_-]{0,31}")
# Argon2id: memory-hard, so a stolen table of hashes is expensive to attack with GPUs.
password_hasher = PasswordHasher()


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


# --- stores ----------------------------------------------------------------------------------------

def create_store(session: Session, *, code: str, name: str, timezone: str = "Asia/Shanghai",
                 actor: StaffUser | None) -> Store:
    """A new store. The code is trimmed and upper-cased ("s001 " is S001), then must be 1-32 letters,
    digits, "-" or "_" and unique whatever the case; `timezone` is an IANA name ("Europe/Paris")."""
    code, name, timezone = code.strip().upper(), name.strip(), timezone.strip()
    errors = {}
    if not STORE_CODE.fullmatch(code):
        errors["code"] = ["1-32 letters, digits, '-' or '_'."]
    elif session.scalar(sa.select(Store.id).where(sa.func.upper(Store.code) == code)):
        errors["code"] = [f"A store {code} exists."]
    if not name:
        errors["name"] = ["Required."]
    elif len(name) > 200:
        errors["name"] = ["At most 200 characters."]
    if not _is_time_zone(timezone):
        errors["timezone"] = [f"Unknown time zone {timezone!r}: an IANA name such as Asia/Shanghai."]
    if errors:
        raise ValidationFailed("store not created", errors=errors)
    store = Store(code=code, name=name, timezone=timezone)
    session.add(store)
    session.flush()
    record_audit(session, action="store.create", actor=actor, subject=f"store:{code}", after=_store_state(store))
    return store


def _is_time_zone(name: str) -> bool:
    if not name or len(name) > 64:
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def list_stores(session: Session) -> list[Store]:
    return list(session.scalars(sa.select(Store).order_by(Store.code)))


def _store_state(store: Store) -> dict:
    return {"code": store.code, "name": store.name, "timezone": store.timezone}


# --- API clients -----------------------------------------------------------------------------------

def create_api_client(session: Session, *, name: str, store: Store, scope: str = "pos",
                      actor: StaffUser | None = None) -> tuple[ApiClient, str]:
    """A new client and its key. The key is returned once and only its hash is kept."""
    if scope not in API_SCOPES:
        raise ValidationFailed(f"unknown scope {scope!r}", errors={"scope": [f"One of {', '.join(API_SCOPES)}."]})
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    scopes = "pos manage" if scope == "manage" else "pos"
    client = ApiClient(name=name, store=store, key_prefix=key[:SHOWN_KEY_CHARS], key_sha256=hash_api_key(key),
                       scopes=scopes)
    session.add(client)
    session.flush()
    record_audit(session, action="api_key.create", actor=actor, subject=f"api_key:{client.key_prefix}",
                 after=_api_client_state(client))
    return client, key


def list_api_clients(session: Session) -> list[ApiClient]:
    """Every client, revoked ones too, newest first (each with its store)."""
    return list(session.scalars(sa.select(ApiClient).order_by(ApiClient.created_at.desc(), ApiClient.id.desc())))


def revoke_api_client_by_prefix(session: Session, prefix: str, *, actor: StaffUser | None,
                                now: datetime) -> ApiClient:
    """Revoke the one key named by `prefix`: the prefix lists show, any start of it at least
    MIN_REVOKE_PREFIX long, or the whole key. The commit clears this process's copies of the keys
    (loyalty/cache.py), so its next request with the key is refused; other web processes refuse it
    within HOT_CACHE_SECONDS."""
    prefix = prefix.strip()
    if len(prefix) < MIN_REVOKE_PREFIX:
        raise ValidationFailed("prefix too short", errors={
            "prefix": [f"At least {MIN_REVOKE_PREFIX} characters of the key, as `api-key list` shows them."]})
    if len(prefix) > SHOWN_KEY_CHARS:
        named = ApiClient.key_sha256 == hash_api_key(prefix)
    else:
        named = ApiClient.key_prefix.startswith(prefix, autoescape=True)
    found = list(session.scalars(sa.select(ApiClient).where(named).order_by(ApiClient.id)))
    if not found:
        # Never more of a key in a message than lists show of it.
        raise NotFound(f"no API key starts with {prefix[:SHOWN_KEY_CHARS]!r}")
    if len(found) > 1:
        names = ", ".join(f"{client.key_prefix} ({client.name})" for client in found)
        raise ValidationFailed(f"{prefix!r} names {len(found)} keys", errors={
            "prefix": [f"Ambiguous: {names}. Give more of the key."]})
    revoke_api_client(found[0], now, actor=actor)
    return found[0]


def revoke_api_client(client: ApiClient, now: datetime, *, actor: StaffUser | None = None) -> None:
    """Revoke this client's key, audited in the client's own session (see revoke_api_client_by_prefix)."""
    if client.revoked_at is not None:
        raise ValidationFailed(f"API key {client.key_prefix} was revoked at {client.revoked_at.isoformat()}",
                               errors={"prefix": ["Already revoked."]})
    session = object_session(client)
    before = _api_client_state(client)
    client.revoked_at = now
    session.flush()
    record_audit(session, action="api_key.revoke", actor=actor, subject=f"api_key:{client.key_prefix}",
                 before=before, after=_api_client_state(client))


def _api_client_state(client: ApiClient) -> dict:
    return {"name": client.name, "store": client.store.code, "scopes": client.scopes,
            "key_prefix": client.key_prefix, "revoked_at": client.revoked_at}


@dataclass(frozen=True)
class StoreCopy:
    id: int
    code: str
    name: str
    timezone: str


@dataclass(frozen=True)
class ApiCaller:
    """An authenticated API client as the request sees it: a copy of its row and its store's, which
    the hot cache may keep between requests (loyalty/cache.py)."""

    id: int
    name: str
    scopes: str
    store: StoreCopy

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes.split()


def authenticate_api_key(session: Session, key: str) -> ApiCaller | None:
    """The live client holding this key, or None for unknown and revoked keys alike. Only live keys
    are kept in the cache, so guessing keys cannot fill it."""
    key_sha256 = hash_api_key(key)
    return cached(("api-key", key_sha256), lambda: _live_caller(session, key_sha256))


def _live_caller(session: Session, key_sha256: str) -> ApiCaller | None:
    client = session.scalar(sa.select(ApiClient).where(ApiClient.key_sha256 == key_sha256))
    if client is None or client.revoked_at is not None:
        return None
    store = client.store
    return ApiCaller(id=client.id, name=client.name, scopes=client.scopes,
                     store=StoreCopy(id=store.id, code=store.code, name=store.name, timezone=store.timezone))


def api_key_use_due(caller: ApiCaller) -> bool:
    """Whether this process should record a use of the key now: once per key per KEY_USE_RESOLUTION
    (remembered in the hot cache), so "last used" costs a write every few minutes, not one per call."""
    if (cache := hot_cache()) is None:
        return False
    # The cache hands back the token of the call that stored it: this call's own only when it is due.
    token = object()
    return cache.get(("api-key-used", caller.id), KEY_USE_RESOLUTION.total_seconds(), lambda: token) is token


def record_api_key_use(session: Session, client_id: int, now: datetime) -> None:
    """Stamp `last_used_at`, unless another process stamped it within KEY_USE_RESOLUTION. A statement
    on the session's connection, not through the ORM: the stamp is no change of a cached key (a bulk
    UPDATE of ApiClient through the session would clear this process's hot cache at its commit)."""
    session.connection().execute(
        sa.update(ApiClient)
        .where(ApiClient.id == client_id,
               sa.or_(ApiClient.last_used_at.is_(None), ApiClient.last_used_at < now - KEY_USE_RESOLUTION))
        .values(last_used_at=now))


# --- staff users -----------------------------------------------------------------------------------

def create_staff_user(session: Session, *, email: str, role: str, password: str,
                      store: Store | None = None, actor: StaffUser | None = None) -> StaffUser:
    """A staff account. A cashier works at a store, so needs one."""
    _check_role(role, store)
    _check_password(password)
    email = email.strip().lower()
    if session.scalar(sa.select(StaffUser.id).where(StaffUser.email == email)):
        raise ValidationFailed("email taken", errors={"email": ["A staff user with this email exists."]})
    user = StaffUser(email=email, role=role, password_hash=password_hasher.hash(password), store=store, active=True)
    session.add(user)
    session.flush()
    record_audit(session, action="staff.create", actor=actor, subject=_staff_subject(user), after=_staff_state(user))
    return user


def list_staff_users(session: Session) -> list[StaffUser]:
    return list(session.scalars(sa.select(StaffUser).options(selectinload(StaffUser.store))
                                .order_by(StaffUser.email)))


def staff_by_email(session: Session, email: str) -> StaffUser:
    user = session.scalar(sa.select(StaffUser).where(StaffUser.email == email.strip().lower()))
    if user is None:
        raise NotFound(f"no staff user {email.strip()!r}")
    return user


def set_staff_active(session: Session, staff: StaffUser, active: bool, *, actor: StaffUser | None) -> None:
    """Enable or disable an account. A disabled account cannot sign in and its open sessions are refused
    from the next request (web/access.py loads only active accounts). Unchanged: nothing is written."""
    if staff.active == active:
        return
    if not active:
        _refuse_losing_the_last_admin(session, staff, "disable")
    before = _staff_state(staff)
    staff.active = active
    if not active:
        # Re-enabling the account later must not revive the sessions open now.
        end_sessions(staff)
    session.flush()
    record_audit(session, action="staff.enable" if active else "staff.disable", actor=actor,
                 subject=_staff_subject(staff), before=before, after=_staff_state(staff))


def end_sessions(account) -> None:
    """Every session and remember-me cookie of `account` (a StaffUser or a Member) stops working from
    its next request: the session epoch is part of their credential stamp (web/access.py)."""
    account.session_epoch = (account.session_epoch or 0) + 1


def set_staff_password(session: Session, staff: StaffUser, password: str, *, actor: StaffUser | None) -> None:
    """A new password. It changes the account's credential stamp, which ends every session and
    remember-me cookie signed in with the old one (web/access.py)."""
    _check_password(password)
    staff.password_hash = password_hasher.hash(password)
    session.flush()
    # Nothing of the password or its hash goes in the trail: only that it changed.
    record_audit(session, action="staff.password", actor=actor, subject=_staff_subject(staff),
                 after={"password_changed": True})


def set_staff_role(session: Session, staff: StaffUser, role: str, *, actor: StaffUser | None,
                   store: Store | None = None) -> None:
    """A new role (and, when given, store). A cashier needs a store; the last active admin stays one."""
    store = store or staff.store
    _check_role(role, store)
    if staff.role == role and store is staff.store:
        return
    if staff.role == "admin" and role != "admin":
        _refuse_losing_the_last_admin(session, staff, "demote")
    before = _staff_state(staff)
    staff.role, staff.store = role, store
    session.flush()
    record_audit(session, action="staff.role", actor=actor, subject=_staff_subject(staff), before=before,
                 after=_staff_state(staff))


def _check_role(role: str, store: Store | None) -> None:
    if role not in STAFF_ROLES:
        raise ValidationFailed(f"unknown role {role!r}", errors={"role": [f"One of {', '.join(STAFF_ROLES)}."]})
    if role == "cashier" and store is None:
        raise ValidationFailed("a cashier needs a store", errors={"store": ["Required for a cashier."]})


def _check_password(password: str) -> None:
    if len(password) < PASSWORD_MIN_LENGTH:
        raise ValidationFailed("password too short",
                               errors={"password": [f"At least {PASSWORD_MIN_LENGTH} characters."]})


def _refuse_losing_the_last_admin(session: Session, staff: StaffUser, verb: str) -> None:
    """Someone must be left who can administer the system. The active admins' rows are locked
    (PostgreSQL), so two admins disabling each other at once cannot both succeed."""
    if staff.role != "admin" or not staff.active:
        return
    admins = session.scalars(sa.select(StaffUser.id).where(StaffUser.role == "admin", StaffUser.active)
                             .with_for_update()).all()
    if set(admins) <= {staff.id}:
        raise ValidationFailed(f"cannot {verb} the last active admin",
                               errors={"email": [f"{staff.email} is the last active admin."]})


def _staff_subject(staff: StaffUser) -> str:
    return f"staff:{staff.email}"


def _staff_state(staff: StaffUser) -> dict:
    return {"email": staff.email, "role": staff.role, "store": staff.store.code if staff.store else None,
            "active": staff.active}


def check_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return password_hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def store_by_code(session: Session, code: str | None) -> Store:
    """The named store, or the first store when no code is given (single-store installs)."""
    query = sa.select(Store).order_by(Store.id)
    if code:
        query = query.where(Store.code == code)
    store = session.scalars(query).first()
    if store is None:
        raise ValidationFailed(f"no store {code!r}" if code else "no store exists yet",
                               errors={"store_code": ["Unknown store."]})
    return store


@functools.cache
def _unknown_account_hash() -> str:
    # Verified against when no account matches, so an unknown email costs as much time as a wrong
    # password and response times do not reveal which emails have accounts.
    return password_hasher.hash(secrets.token_hex(16))


def verify_password_or_waste_time(password_hash: str | None, password: str) -> bool:
    """check_password, spending the same effort when there is no hash to check against."""
    if not password_hash:
        check_password(_unknown_account_hash(), password)
        return False
    return check_password(password_hash, password)


def authenticate_staff(session: Session, email: str, password: str) -> StaffUser | None:
    """The active staff user with this email and password, or None (wrong, unknown or disabled alike)."""
    user = session.scalar(sa.select(StaffUser).where(StaffUser.email == email.strip().lower()))
    if not verify_password_or_waste_time(user.password_hash if user else None, password):
        return None
    return user if user.active else None
