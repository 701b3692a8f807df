"""The CDNOW data sets that the BG/NBD paper and most churn studies use, read from the `lifetimes` wheel.

The files are opened in place inside the installed distribution rather than through `lifetimes` itself:
its `datasets` module imports `pkg_resources` (gone from current setuptools) and pandas options that
pandas 3 deprecates, and the tests only need the text files. Requirement: `lifetimes==0.11.3`.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import numpy as np
import pytest

from loyalty.insights.purchase_log import EventLog

CALIBRATION_END = np.datetime64("1997-09-30")
HORIZON_DAYS = 39 * 7  # the paper's 39-week holdout: 1997-10-01 .. 1998-06-30


def dataset_path(name: str) -> Path:
    """Path to one of the data files shipped in the lifetimes wheel.

    A missing wheel fails the test rather than skipping it: a skipped accuracy test looks like a pass.
    """
    try:
        return Path(distribution("lifetimes").locate_file(f"lifetimes/datasets/{name}"))
    except PackageNotFoundError:
        pytest.fail("CDNOW data comes from the lifetimes wheel: pip install lifetimes==0.11.3")


@cache
def sample_summary() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, t_x, T) in weeks for the paper's 2,357-customer sample over the 39-week calibration period."""
    table = np.loadtxt(dataset_path("cdnow_customers_summary.csv"), delimiter=",", skiprows=1)
    return table[:, 1], table[:, 2], table[:, 3]


@cache
def master_log() -> EventLog:
    """Every purchase of all 23,570 customers, 1997-01-01 .. 1998-06-30 (customer, date, CDs, dollars)."""
    master = dataset_path("CDNOW_master.txt")
    customer, yyyymmdd, _cds, dollars = np.loadtxt(master, dtype=str, skiprows=1, unpack=True)
    return EventLog.from_arrays(customer.astype(np.int64), _dates(yyyymmdd), dollars.astype(float))


@cache
def sample_log() -> EventLog:
    """The paper's 1/10th sample as raw purchases (master id, sample id, date, CDs, dollars)."""
    sample = dataset_path("CDNOW_sample.txt")
    _master_id, sample_id, yyyymmdd, _cds, dollars = np.loadtxt(sample, dtype=str, unpack=True)
    return EventLog.from_arrays(sample_id.astype(np.int64), _dates(yyyymmdd), dollars.astype(float))


def _dates(yyyymmdd: np.ndarray) -> np.ndarray:
    """'19970101' strings to datetime64[D]; numpy only parses the dashed ISO form."""
    return np.array([f"{d[:4]}-{d[4:6]}-{d[6:]}" for d in yyyymmdd], dtype="datetime64[D]")
