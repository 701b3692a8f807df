"""Rotating QR card tokens (docs/api.md "Member codes").

A token is `LY` + base32(version, member id, issue time, MAC). The MAC is an HMAC keyed by the app's
secret and the member's own card secret, so tokens cannot be forged without both, and clearing a
member's card secret (erasure) kills every token ever shown. The issue time is the start of the
current step, so a token changes every step and is accepted for at most max-age seconds after it was
first shown. Base32 keeps the QR in its compact alphanumeric mode and survives scanners that type
in upper case.
"""

import base64
import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

TOKEN_PREFIX = "LY"
_VERSION = 1
_LAYOUT = struct.Struct(">BQI")
_MAC_BYTES = 10


@dataclass(frozen=True)
class CardToken:
    token: str
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class DecodedToken:
    member_id: int
    issued_at: datetime
    mac: bytes
    signed: bytes


def new_card_secret() -> str:
    return secrets.token_hex(16)


def issue_card_token(app_secret: str, member_id: int, card_secret: str, now: datetime, *,
                     step_seconds: int, max_age_seconds: int) -> CardToken:
    epoch = int(now.timestamp())
    issued = epoch - epoch % step_seconds
    signed = _LAYOUT.pack(_VERSION, member_id, issued)
    raw = signed + _mac(app_secret, card_secret, signed)
    token = TOKEN_PREFIX + base64.b32encode(raw).decode().rstrip("=")
    issued_at = datetime.fromtimestamp(issued, UTC)
    return CardToken(token=token, issued_at=issued_at, expires_at=issued_at + timedelta(seconds=max_age_seconds))


def decode_card_token(token: str) -> DecodedToken | None:
    """Parse a token's fields without trusting them; None when it is not a token at all."""
    body = token.strip().upper()
    if not body.startswith(TOKEN_PREFIX):
        return None
    body = body[len(TOKEN_PREFIX):]
    try:
        raw = base64.b32decode(body + "=" * (-len(body) % 8))
    except ValueError:
        return None
    if len(raw) != _LAYOUT.size + _MAC_BYTES:
        return None
    version, member_id, issued = _LAYOUT.unpack(raw[: _LAYOUT.size])
    if version != _VERSION:
        return None
    return DecodedToken(member_id=member_id, issued_at=datetime.fromtimestamp(issued, UTC),
                        mac=raw[_LAYOUT.size:], signed=raw[: _LAYOUT.size])


def token_is_genuine(app_secret: str, decoded: DecodedToken, card_secret: str | None) -> bool:
    if not card_secret:
        return False
    return hmac.compare_digest(decoded.mac, _mac(app_secret, card_secret, decoded.signed))


def _mac(app_secret: str, card_secret: str, signed: bytes) -> bytes:
    key = hashlib.sha256(f"loyalty-card:{app_secret}:{card_secret}".encode()).digest()
    return hmac.new(key, signed, hashlib.sha256).digest()[:_MAC_BYTES]
