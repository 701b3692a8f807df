"""Every domain's models, imported together so the metadata (and so migrations) sees all tables."""

from loyalty.auth.models import ApiClient, AuditEvent, RateLimitCounter, StaffUser, Store  # noqa: F401
from loyalty.campaigns.campaign_models import Campaign, CampaignMember  # noqa: F401
from loyalty.campaigns.models import (  # noqa: F401
    Coupon,
    CouponBatch,
    CouponRedemption,
    Offer,
    OfferMemberUse,
)
from loyalty.campaigns.segment_models import Segment, SegmentChange, SegmentMember  # noqa: F401
from loyalty.insights.models import AssociationRule, JobRun, RfmSnapshot, RfmSnapshotMember  # noqa: F401
from loyalty.jobs import DeferredJob  # noqa: F401
from loyalty.members.models import ConsentEvent, Member, StaffNote  # noqa: F401
from loyalty.points.models import (  # noqa: F401
    EarningRule,
    LotAllocation,
    PointsEntry,
    PointsLot,
    ProgramSettings,
    Tier,
    TierChange,
)
from loyalty.points.promotion_models import Promotion, PromotionGrant, PromotionMemberPoints  # noqa: F401
from loyalty.sales.models import IdempotencyRecord, Transaction, TransactionLine  # noqa: F401
