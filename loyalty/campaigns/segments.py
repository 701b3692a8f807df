"""Segments: a rule tree over members, compiled to one SQL query, and its stored evaluations."""

import sqlalchemy as sa

from loyalty.campaigns.segment_models import SegmentMember


def member_ids_query(session, segment_id: int) -> sa.Select:
    """The ids of the members currently in saved segment `segment_id`, as of its last evaluation:
    a select to use as a subquery (`Member.id.in_(...)`) or to run."""
    del session  # unused: the members are stored rows; the parameter is part of the shared interface
    return sa.select(SegmentMember.member_id).where(SegmentMember.segment_id == segment_id)
