"""Declarative base, constraint naming convention and the column types the whole schema shares."""

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, mapped_column, registry

from loyalty.clock import utcnow

# Stable constraint names, so migrations can name what they alter on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.TypeDecorator):
    """Timezone-aware UTC in and out, on PostgreSQL (timestamptz) and SQLite (which drops the offset)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: store timezone-aware UTC only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# 64-bit keys on PostgreSQL; SQLite only auto-increments a column declared INTEGER.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# The largest key either backend stores (signed 64-bit). Id routes cap their converter with it, so a
# larger number in a URL is a 404 instead of a driver overflow (a 500).
MAX_ID = 2**63 - 1


def id_column():
    """Primary key column used by every table."""
    return mapped_column(BigId, primary_key=True)


def created_at_column():
    """`created_at` set from the program clock when the row is inserted."""
    return mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class Base(DeclarativeBase):
    # Every `Mapped[datetime]` column is a UTCDateTime.
    registry = registry(
        metadata=sa.MetaData(naming_convention=NAMING_CONVENTION), type_annotation_map={datetime: UTCDateTime()}
    )
