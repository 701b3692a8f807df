"""Every domain's models, imported together so the metadata (and so migrations) sees all tables."""

from loyalty.auth.models import ApiClient, AuditEvent, StaffUser, Store  # noqa: F401
from loyalty.members.models import Member  # noqa: F401
from loyalty.points.models import (  # noqa: F401
    EarningRule,
    LotAllocation,
    PointsEntry,
    PointsLot,
    ProgramSettings,
    Tier,
    TierChange,
)
from loyalty.sales.models import IdempotencyRecord, Transaction, TransactionLine  # noqa: F401
