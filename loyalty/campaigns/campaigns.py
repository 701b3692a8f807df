"""Campaigns: create, launch, the draw into control and treatment, the actions, end. Verbs take a
session and flush; the caller (loyalty.pos_api.campaigns, loyalty.campaigns.campaign_tasks) commits.

A launch runs as a job in steps the job commits one by one:
1. `freeze_audience`: the saved segment's current members become the campaign's CampaignMember rows,
   each with the arm `draw_arm` gives (from the campaign id and the member id alone), inserted with
   ON CONFLICT DO NOTHING on (campaign_id, member_id), all in one transaction; `launched_at` says the
   audience is frozen, so a later run never adds whoever entered the segment since.
2. `act_next_chunk`, again and again: under a lock on the campaign row, the next treatment members not
   yet acted on get the action, and the same transaction records it on their rows (coupon_id,
   points_entry_id, acted_at) and moves `acted_count`. A run that dies loses at most its open chunk;
   the next run (RQ's retry, the sweeper, or launching again) carries on from the committed rows, so
   nobody is moved to the other arm and nobody gets the action twice. Control members get nothing.
3. When no treatment member is left to act on, the campaign is `running`.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loyalty.audit import record_audit
from loyalty.auth.models import ApiClient, StaffUser
from loyalty.bulk import insert_new_rows, insert_rows, update_rows
from loyalty.campaigns.batches import fresh_codes
from loyalty.campaigns.campaign_models import Campaign, CampaignMember
from loyalty.campaigns.models import Coupon, Offer
from loyalty.campaigns.segment_models import Segment
from loyalty.campaigns.segments import member_ids_query
from loyalty.campaigns.services import coupon_expiry, refuse_ended_offer
from loyalty.errors import NotFound, ValidationFailed
from loyalty.members.models import Member
from loyalty.points.ledger import lock_wallets, save_wallets
from loyalty.points.program import load_program

MAX_CONTROL_PERCENT = 50
MAX_CONVERSION_WINDOW_DAYS = 365
MAX_BONUS_POINTS = 1_000_000
# Members per INSERT of the frozen audience: four bound values a row, well under SQLite's limit.
FREEZE_CHUNK = 2_000
DRAW_BUCKETS = 10_000
MEMBERS = CampaignMember.__table__


@dataclass(frozen=True)
class ActionSpec:
    """What treatment members get: kind "coupon" (offer_id) or "bonus_points" (points). "promotion"
    (promotion_id) and "message" (channel, template) are part of the contract but refused for now."""

    kind: str
    offer_id: int | None = None
    points: int | None = None
    promotion_id: int | None = None
    channel: str | None = None
    template: str | None = None

    def stored(self) -> dict:
        """The action as the campaign row keeps it (and the API shows it): the kind and its one value."""
        value = {"coupon": "offer_id", "bonus_points": "points", "promotion": "promotion_id"}[self.kind]
        return {"kind": self.kind, value: getattr(self, value)}


@dataclass(frozen=True)
class CampaignSpec:
    name: str
    segment_id: int
    action: ActionSpec
    control_percent: int
    conversion_window_days: int = 30
    trigger: dict | None = None


@dataclass(frozen=True)
class CampaignCounts:
    """The campaign's audience (`members` = treatment + control) and how many treatment members the
    action has reached so far."""

    members: int
    treatment: int
    control: int
    acted: int


# --- the draw ------------------------------------------------------------------------------------

def draw_arm(campaign_id: int, member_id: int, control_percent: int) -> str:
    """"control" or "treatment", from the campaign and the member alone: the first 8 bytes of
    SHA-256("campaign_id:member_id") spread members evenly over 10,000 buckets, and the lowest
    control_percent × 100 buckets are control. No secret and no state, so every run, retry or replica
    draws the same arm, and the results can re-derive it."""
    digest = hashlib.sha256(f"{campaign_id}:{member_id}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % DRAW_BUCKETS
    return "control" if bucket < control_percent * (DRAW_BUCKETS // 100) else "treatment"


# --- creating and reading ------------------------------------------------------------------------

def create_campaign(session: Session, spec: CampaignSpec, *, now: datetime, api_client: ApiClient | None = None,
                    staff_user: StaffUser | None = None) -> Campaign:
    """A draft campaign, once `spec` keeps every rule: a known segment, an action that can be given,
    control 0-50 percent, a conversion window of 1-365 days."""
    errors: dict[str, list[str]] = {}
    if not 0 <= spec.control_percent <= MAX_CONTROL_PERCENT:
        errors["control_percent"] = [f"Between 0 and {MAX_CONTROL_PERCENT}."]
    if not 1 <= spec.conversion_window_days <= MAX_CONVERSION_WINDOW_DAYS:
        errors["conversion_window_days"] = [f"Between 1 and {MAX_CONVERSION_WINDOW_DAYS}."]
    if session.get(Segment, spec.segment_id) is None:
        errors["segment_id"] = [f"No segment has the id {spec.segment_id}."]
    if spec.trigger is not None:
        errors["trigger"] = ["Triggered campaigns are not available yet: leave trigger out to act once, at launch."]
    action_errors = _action_errors(session, spec.action, now)
    if action_errors:
        errors["action"] = action_errors
    if errors:
        raise ValidationFailed("the campaign breaks a rule", errors=errors)
    campaign = Campaign(name=spec.name, segment_id=spec.segment_id, action=spec.action.stored(),
                        control_percent=spec.control_percent, conversion_window_days=spec.conversion_window_days,
                        trigger=None, status="draft", members_count=0, treatment_count=0, control_count=0,
                        acted_count=0, created_at=now, created_by_client_id=api_client.id if api_client else None,
                        created_by_staff_id=staff_user.id if staff_user else None)
    session.add(campaign)
    session.flush()
    record_audit(session, action="campaign.create", actor=staff_user, api_client=api_client, at=now,
                 after={"campaign_id": campaign.id, "name": campaign.name, "action": campaign.action})
    return campaign


def _action_errors(session: Session, action: ActionSpec, now: datetime) -> list[str]:
    if action.kind == "message":
        return ["The message action comes with the outbox: not available yet."]
    if action.kind == "coupon":
        offer = session.get(Offer, action.offer_id) if action.offer_id is not None else None
        if offer is None:
            return [f"No offer has the id {action.offer_id}."]
        if offer.valid_until is not None and offer.valid_until <= now:
            return [f"Offer {offer.id} has ended."]
        return []
    if action.kind == "bonus_points":
        if action.points is None or not 1 <= action.points <= MAX_BONUS_POINTS:
            return [f"points: between 1 and {MAX_BONUS_POINTS}."]
        return []
    if action.kind == "promotion":
        return ["The promotion action is not available yet: give a coupon or bonus points."]
    return [f"Unknown kind {action.kind!r}: coupon, bonus_points, promotion or message."]


def get_campaign(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"no campaign has the id {campaign_id}")
    return campaign


def campaign_counts(campaign: Campaign) -> CampaignCounts:
    return CampaignCounts(members=campaign.members_count, treatment=campaign.treatment_count,
                          control=campaign.control_count, acted=campaign.acted_count)


@dataclass(frozen=True)
class AudienceMember:
    """One row of a campaign's audience as a marketer or an integrator reads it."""

    id: int
    member_no: str
    arm: str
    drawn_at: datetime
    acted_at: datetime | None
    coupon_code: str | None
    points_entry_id: int | None


def campaign_members(session: Session, campaign: Campaign, *, arm: str | None = None, limit: int = 50,
                     after_id: int | None = None) -> list[AudienceMember]:
    """A page of the frozen audience in row order, of one arm or both."""
    statement = (
        sa.select(CampaignMember.id, Member.member_no, CampaignMember.arm, CampaignMember.drawn_at,
                  CampaignMember.acted_at, Coupon.code, CampaignMember.points_entry_id)
        .join(Member, Member.id == CampaignMember.member_id)
        .outerjoin(Coupon, Coupon.id == CampaignMember.coupon_id)
        .where(CampaignMember.campaign_id == campaign.id))
    if arm is not None:
        statement = statement.where(CampaignMember.arm == arm)
    if after_id is not None:
        statement = statement.where(CampaignMember.id > after_id)
    return [AudienceMember(*row) for row in session.execute(statement.order_by(CampaignMember.id).limit(limit))]


# --- launching and ending ------------------------------------------------------------------------

def launch_campaign(session: Session, campaign_id: int, *, now: datetime, api_client: ApiClient | None = None,
                    staff_user: StaffUser | None = None) -> Campaign:
    """draft → launching (run the launch job after committing). Any other status is left as it is:
    launching again changes nothing (and a launching campaign's job may safely be started again)."""
    campaign = _locked(session, campaign_id)
    if campaign.status == "draft":
        if campaign.action["kind"] == "coupon":
            refuse_ended_offer(session.get(Offer, campaign.action["offer_id"]), now)
        campaign.status = "launching"
        campaign.progress_at = now
        record_audit(session, action="campaign.launch", actor=staff_user, api_client=api_client, at=now,
                     after={"campaign_id": campaign.id})
        session.flush()
    return campaign


def end_campaign(session: Session, campaign_id: int, *, now: datetime, api_client: ApiClient | None = None,
                 staff_user: StaffUser | None = None) -> Campaign:
    """Any status → ended (a launch in progress stops at its next chunk). Ending again changes nothing."""
    campaign = _locked(session, campaign_id)
    if campaign.status != "ended":
        campaign.status, campaign.ended_at = "ended", now
        record_audit(session, action="campaign.end", actor=staff_user, api_client=api_client, at=now,
                     after={"campaign_id": campaign.id})
        session.flush()
    return campaign


def _locked(session: Session, campaign_id: int) -> Campaign:
    campaign = session.scalar(sa.select(Campaign).where(Campaign.id == campaign_id).with_for_update()
                              .execution_options(populate_existing=True))
    if campaign is None:
        raise NotFound(f"no campaign has the id {campaign_id}")
    return campaign


def freeze_audience(session: Session, campaign_id: int, now: datetime) -> int:
    """Step 1 of a launch: draw the segment's current members into the campaign, once; returns how
    many rows this call inserted (0 when the audience was already frozen)."""
    campaign = _locked(session, campaign_id)
    if campaign.status != "launching" or campaign.launched_at is not None:
        return 0
    member_ids = session.scalars(member_ids_query(session, campaign.segment_id)).all()
    inserted = 0
    for start in range(0, len(member_ids), FREEZE_CHUNK):
        rows = [{"campaign_id": campaign.id, "member_id": member_id,
                 "arm": draw_arm(campaign.id, member_id, campaign.control_percent)}
                for member_id in member_ids[start:start + FREEZE_CHUNK]]
        inserted += len(insert_new_rows(session, MEMBERS, rows, unique=("campaign_id", "member_id"),
                                        returning=("id",), same={"drawn_at": now}))
    arms = dict(session.execute(sa.select(CampaignMember.arm, sa.func.count()).where(
        CampaignMember.campaign_id == campaign.id).group_by(CampaignMember.arm)).all())
    campaign.treatment_count, campaign.control_count = arms.get("treatment", 0), arms.get("control", 0)
    campaign.members_count = campaign.treatment_count + campaign.control_count
    campaign.launched_at = campaign.progress_at = now
    session.flush()
    return inserted


def act_next_chunk(session: Session, campaign_id: int, now: datetime, *, chunk_size: int) -> int:
    """Step 2 of a launch: give the action to the next `chunk_size` treatment members not yet acted on,
    recorded on their rows; returns how many, 0 once none is left (the campaign is then running)."""
    campaign = _locked(session, campaign_id)
    if campaign.status != "launching" or campaign.launched_at is None:
        return 0
    rows = session.execute(
        sa.select(CampaignMember.id, CampaignMember.member_id)
        .where(CampaignMember.campaign_id == campaign.id, CampaignMember.arm == "treatment",
               CampaignMember.acted_at.is_(None))
        .order_by(CampaignMember.id).limit(chunk_size)).all()
    if not rows:
        campaign.status = "running"
        campaign.progress_at = now
        session.flush()
        return 0
    if campaign.action["kind"] == "coupon":
        updates = _issue_coupons(session, campaign, rows, now)
    else:
        updates = _give_points(session, campaign, rows, now)
    update_rows(session, MEMBERS, updates)
    campaign.acted_count += len(rows)
    campaign.progress_at = now
    session.flush()
    return len(rows)


def _issue_coupons(session: Session, campaign: Campaign, rows, now: datetime) -> list[dict]:
    offer = session.get(Offer, campaign.action["offer_id"])
    refuse_ended_offer(offer, now)
    expires_at = coupon_expiry(offer, now, single_use=True)
    coupon_ids = insert_rows(session, Coupon.__table__, [
        {"code": code, "offer_id": offer.id, "member_id": member_id, "generic": False, "status": "issued",
         "uses_limit": 1, "uses_count": 0, "expires_at": expires_at, "issued_at": now}
        for code, (_, member_id) in zip(fresh_codes(session, len(rows)), rows, strict=True)
    ], return_ids=True)
    return [{"id": row_id, "acted_at": now, "coupon_id": coupon_id}
            for (row_id, _), coupon_id in zip(rows, coupon_ids, strict=True)]


def _give_points(session: Session, campaign: Campaign, rows, now: datetime) -> list[dict]:
    _, expires_at = load_program(session).lot_dates(now)
    wallets = lock_wallets(session, [member_id for _, member_id in rows])
    entries = {member_id: wallets[member_id].credit(
        "bonus", campaign.action["points"], occurred_at=now, available_at=now, expires_at=expires_at,
        reason=f"campaign: {campaign.name}"[:200], source=f"campaign:{campaign.id}") for _, member_id in rows}
    save_wallets(session, wallets.values())
    return [{"id": row_id, "acted_at": now, "points_entry_id": entries[member_id].id} for row_id, member_id in rows]


def stalled_launch_ids(session: Session, still_since: datetime) -> list[int]:
    """Campaigns launching whose last committed step is older than `still_since` (their job died)."""
    return list(session.scalars(
        sa.select(Campaign.id)
        .where(Campaign.status == "launching",
               sa.func.coalesce(Campaign.progress_at, Campaign.created_at) < still_since)
        .order_by(Campaign.id)))


def record_launch_error(session: Session, campaign_id: int, error: str) -> None:
    """Keep why the launch job failed on the campaign (it stays launching, to be resumed or ended)."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is not None:
        campaign.error = error[:2000]
        session.flush()
