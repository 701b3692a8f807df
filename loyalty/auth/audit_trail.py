"""Reading the audit trail (loyalty/audit.py writes it): every audited change and every staff view of a
member's data, newest first, a page at a time, filtered by action, by who acted and by member."""

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from loyalty.auth.models import ApiClient, AuditEvent, StaffUser
from loyalty.members.models import Member

PAGE_SIZE = 50
ACTION_PREFIX_MAX = 64


@dataclass(frozen=True)
class AuditFilter:
    """Empty fields filter nothing. `action` is a prefix ("tier." or "member.view"); `actor` a staff
    email, exact; `member_no` a member number, exact. `leave_out` is an action left out (the trail of
    changes leaves out the looks at members' data, which the data-access log lists)."""

    action: str = ""
    actor: str = ""
    member_no: str = ""
    leave_out: str = ""


@dataclass(frozen=True)
class AuditLine:
    event: AuditEvent
    staff_email: str | None
    api_client_name: str | None
    member_no: str | None


@dataclass(frozen=True)
class AuditPage:
    lines: list[AuditLine]
    # The id to pass as `before` for the next (older) page; None on the last page.
    older: int | None


def audit_page(session: Session, where: AuditFilter, *, before: int | None = None,
               limit: int = PAGE_SIZE) -> AuditPage:
    """A page of events matching `where`, newest first, older than event `before` when given."""
    staff = aliased(StaffUser)
    query = (sa.select(AuditEvent, staff.email, ApiClient.name, Member.member_no)
             .outerjoin(staff, staff.id == AuditEvent.staff_user_id)
             .outerjoin(ApiClient, ApiClient.id == AuditEvent.api_client_id)
             .outerjoin(Member, Member.id == AuditEvent.member_id)
             .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
             .limit(limit + 1))
    if where.action:
        prefix = where.action[:ACTION_PREFIX_MAX]
        query = query.where(AuditEvent.action.startswith(prefix, autoescape=True))
    if where.leave_out:
        query = query.where(AuditEvent.action != where.leave_out)
    if where.actor:
        query = query.where(staff.email == where.actor.strip().lower())
    if where.member_no:
        query = query.where(Member.member_no == where.member_no.strip())
    if before is not None:
        cursor = session.get(AuditEvent, before)
        if cursor is not None:
            query = query.where(sa.or_(
                AuditEvent.created_at < cursor.created_at,
                sa.and_(AuditEvent.created_at == cursor.created_at, AuditEvent.id < cursor.id)))
    rows = session.execute(query).all()
    lines = [AuditLine(event=event, staff_email=email, api_client_name=client, member_no=member_no)
             for event, email, client, member_no in rows[:limit]]
    return AuditPage(lines=lines, older=lines[-1].event.id if len(rows) > limit else None)


def changed_fields(event: AuditEvent) -> list[tuple[str, object, object]]:
    """(field, before, after) of each field either side names, in the order written; a field one side
    lacks reads None there."""
    before, after = event.before or {}, event.after or {}
    names = list(dict.fromkeys([*before, *after]))
    return [(name, before.get(name), after.get(name)) for name in names]
