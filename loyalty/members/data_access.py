"""The data-access log: every time a staff user opens a page showing a member's personal data, an
audit event `member.view` says who looked at whom, when, and on which page (by its endpoint name,
e.g. "staff.member"). A privacy officer reads them in the admin console's audit trail.

Like every audit row it holds no personal data, only ids and the page, so it outlives an erasure.
"""

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loyalty.audit import record_audit
from loyalty.auth.models import AuditEvent, StaffUser
from loyalty.members.models import Member

VIEW_ACTION = "member.view"
# The card page reloads itself every half minute while it is on screen: reloads of the page a staff
# user last opened for this member, within this time, are the same look and are not written again.
SAME_LOOK = timedelta(minutes=10)


def record_member_view(session: Session, *, staff: StaffUser, member: Member, page: str, now: datetime) -> None:
    """Note that `staff` was shown `member`'s personal data on `page`. Flushes; the caller commits."""
    last = session.scalars(
        sa.select(AuditEvent)
        .where(AuditEvent.member_id == member.id, AuditEvent.action == VIEW_ACTION,
               AuditEvent.staff_user_id == staff.id, AuditEvent.created_at > now - SAME_LOOK)
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(1)).first()
    if last is not None and (last.after or {}).get("page") == page:
        return
    record_audit(session, action=VIEW_ACTION, actor=staff, member_id=member.id, after={"page": page})
    session.flush()
