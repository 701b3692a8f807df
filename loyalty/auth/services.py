"""Accounts: API keys for POS systems and staff users. Keys and passwords are never stored in clear."""

import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from loyalty.auth.models import API_SCOPES, STAFF_ROLES, ApiClient, StaffUser, Store
from loyalty.cache import cached, watch
from loyalty.errors import ValidationFailed

watch(ApiClient, Store)

KEY_PREFIX = "lk_"
# Argon2id: memory-hard, so a stolen table of hashes is expensive to attack with GPUs.
password_hasher = PasswordHasher()


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_client(session: Session, *, name: str, store: Store, scope: str = "pos") -> tuple[ApiClient, str]:
    """A new client and its key. The key is returned once and only its hash is kept."""
    if scope not in API_SCOPES:
        raise ValidationFailed(f"unknown scope {scope!r}", errors={"scope": [f"One of {', '.join(API_SCOPES)}."]})
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    scopes = "pos manage" if scope == "manage" else "pos"
    client = ApiClient(name=name, store=store, key_prefix=key[:10], key_sha256=hash_api_key(key), scopes=scopes)
    session.add(client)
    session.flush()
    return client, key


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


def revoke_api_client(client: ApiClient, now: datetime) -> None:
    client.revoked_at = now


def create_staff_user(session: Session, *, email: str, role: str, password: str,
                      store: Store | None = None) -> StaffUser:
    if role not in STAFF_ROLES:
        raise ValidationFailed(f"unknown role {role!r}", errors={"role": [f"One of {', '.join(STAFF_ROLES)}."]})
    if len(password) < 8:
        raise ValidationFailed("password too short", errors={"password": ["At least 8 characters."]})
    email = email.strip().lower()
    if session.scalar(sa.select(StaffUser.id).where(StaffUser.email == email)):
        raise ValidationFailed("email taken", errors={"email": ["A staff user with this email exists."]})
    user = StaffUser(email=email, role=role, password_hash=password_hasher.hash(password), store=store)
    session.add(user)
    session.flush()
    return user


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
