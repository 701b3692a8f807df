"""Purchases as arrays (EventLog) and each customer as seen on a date (Snapshot), built only from
purchases on or before that date so nothing computed from a snapshot can leak what came after: what
the churn models learn from and score. Dates are whole days since 1970-01-01 (`as_day`, which RFM
scoring counts in too). No database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

DAYS_PER_WEEK = 7.0


def as_day(date) -> int:
    """Whole days since 1970-01-01, so dates from the database, numpy and tests compare as integers."""
    if isinstance(date, (int, np.integer)):
        return int(date)
    if isinstance(date, dt.datetime):
        date = date.date()
    return int(np.datetime64(date, "D").astype(np.int64))


@dataclass(frozen=True)
class EventLog:
    """Purchases as parallel arrays: who bought, on which day, for how much."""

    customer_ids: np.ndarray
    days: np.ndarray
    amounts: np.ndarray

    @classmethod
    def from_arrays(cls, customer_ids, dates, amounts) -> EventLog:
        """Accept datetime64 or integer day numbers, because callers hold either."""
        dates = np.asarray(dates)
        if np.issubdtype(dates.dtype, np.datetime64):
            dates = dates.astype("datetime64[D]").astype(np.int64)
        return cls(np.asarray(customer_ids), dates.astype(np.int64), np.asarray(amounts, float))

    def until(self, as_of) -> EventLog:
        """Only the events on or before `as_of`: what a model may learn from when `as_of` is "now"."""
        known = self.days <= as_day(as_of)
        return EventLog(self.customer_ids[known], self.days[known], self.amounts[known])


@dataclass(frozen=True)
class Snapshot:
    """Each customer as seen on `as_of`: built only from events on or before that day, so nothing
    computed from it can leak what happened afterwards."""

    as_of: int
    customer_ids: np.ndarray
    first_day: np.ndarray
    last_day: np.ndarray
    purchase_days: np.ndarray  # distinct days with a purchase; two receipts on one day are one visit
    total_spend: np.ndarray

    @property
    def recency_days(self) -> np.ndarray:
        return self.as_of - self.last_day

    @property
    def tenure_days(self) -> np.ndarray:
        return self.as_of - self.first_day

    @property
    def usual_gap_days(self) -> np.ndarray:
        """Mean days between visits; NaN for one-visit customers, who have no usual gap yet."""
        repeats = self.purchase_days - 1
        span = (self.last_day - self.first_day).astype(float)
        return np.divide(span, repeats, out=np.full(span.shape, np.nan), where=repeats > 0)

    def bgnbd_inputs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x, t_x, T) in weeks, measured from each customer's first purchase, as the paper does."""
        x = (self.purchase_days - 1).astype(float)
        t_x = (self.last_day - self.first_day) / DAYS_PER_WEEK
        return x, t_x, self.tenure_days / DAYS_PER_WEEK


def take_snapshot(log: EventLog, as_of) -> Snapshot:
    """Summarise every customer who bought on or before `as_of`, ordered by customer id."""
    as_of = as_day(as_of)
    known = log.days <= as_of
    customer_ids, customer = np.unique(log.customer_ids[known], return_inverse=True)
    days = log.days[known]
    first_known_day = int(days.min()) if days.size else 0
    stride = as_of - first_known_day + 1
    # One sortable (customer, day) key turns distinct visits and first/last days into one sort.
    visits = _sorted_unique(customer.astype(np.int64) * stride + (days - first_known_day))
    visit_owner = visits // stride
    everyone = np.arange(len(customer_ids))
    first_visit = np.searchsorted(visit_owner, everyone, side="left")
    last_visit = np.searchsorted(visit_owner, everyone, side="right") - 1
    return Snapshot(
        as_of=as_of,
        customer_ids=customer_ids,
        first_day=visits[first_visit] % stride + first_known_day,
        last_day=visits[last_visit] % stride + first_known_day,
        purchase_days=last_visit - first_visit + 1,
        total_spend=np.bincount(customer, log.amounts[known], minlength=len(customer_ids)),
    )


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique(values) by sorting. numpy 2.3+ answers a plain np.unique by hashing, which on ten
    million int64 keys took 12.6 s of CPU here against 0.6 s for sort-and-compare."""
    ordered = np.sort(values)
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if ordered.size else ordered


def churned_within(log: EventLog, snapshot: Snapshot, horizon_days: int) -> np.ndarray:
    """True for each snapshot customer with no purchase in (as_of, as_of + horizon_days]."""
    window = (log.days > snapshot.as_of) & (log.days <= snapshot.as_of + horizon_days)
    return ~np.isin(snapshot.customer_ids, log.customer_ids[window])
