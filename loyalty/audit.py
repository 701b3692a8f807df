"""The one audit writer: who did what to whom, with the state before and after (AuditEvent).

Actions are named `<thing>.<verb>` (`store.create`, `api_key.revoke`, `staff.disable`, ...). `actor`
(a staff user) or `api_client` (a POS or e-commerce system) is who acted; neither means the operator
CLI. `subject` names a target that is not a member (`store:S001`, `staff:ann@example.com`,
`api_key:lk_ab12cde`); a member is named by `member_id`, so erasure finds it.
"""

from datetime import datetime

from sqlalchemy.orm import Session

from loyalty.auth.models import AuditEvent, StaffUser

# Field names that would put a credential in the trail. The trail is read by every admin and kept for
# years, so a secret written there by mistake is refused rather than stored.
SECRET_FIELDS = frozenset({"password", "password_hash", "key", "api_key", "key_sha256", "secret", "token"})


def record_audit(session: Session, *, action: str, actor: StaffUser | None = None, api_client=None,
                 member_id: int | None = None, subject: str | None = None, before: dict | None = None,
                 after: dict | None = None, at: datetime | None = None) -> AuditEvent:
    """Add an audit row to the session (flushed with the change it records, committed by the caller).
    `api_client` is anything with an `id` (an ApiClient row or the request's ApiCaller copy). `at` is
    the time the service acted on (its `now`), so the row and the change it records agree; without it,
    the clock's time at insert."""
    event = AuditEvent(action=action, staff_user_id=actor.id if actor else None,
                       api_client_id=api_client.id if api_client else None, member_id=member_id,
                       subject=subject, before=_plain(before), after=_plain(after))
    if at is not None:
        event.created_at = at
    session.add(event)
    return event


def _plain(state: dict | None) -> dict | None:
    """The state as JSON can hold it (datetimes as ISO 8601), refusing credential fields."""
    if state is None:
        return None
    if leaked := SECRET_FIELDS.intersection(state):
        raise ValueError(f"audit state must not hold credentials: {sorted(leaked)}")
    return {name: value.isoformat() if isinstance(value, datetime) else value for name, value in state.items()}
