"""The one place the program asks what time it is.

Services take `now` explicitly where timing is the rule (holds, expiry, tiers); callers get it from
`utcnow()`, which tests can steer through `app.config["CLOCK"]` without patching the datetime module.
"""

from datetime import UTC, datetime

from flask import current_app, has_app_context


def utcnow() -> datetime:
    """Current time, timezone-aware UTC, from the app's clock when one is configured."""
    if has_app_context():
        clock = current_app.config.get("CLOCK")
        if clock is not None:
            return clock()
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Normalise an aware datetime to UTC; naive values are refused because they are ambiguous."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: a timezone offset is required")
    return value.astimezone(UTC)
