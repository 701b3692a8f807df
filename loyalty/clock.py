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


def utc_text(value: datetime | None) -> str | None:
    """A time as the API, the CLI and the CSV downloads write it: RFC 3339 in UTC with a `Z`."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
