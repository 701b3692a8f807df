"""Churn risk: how likely a member is to buy nothing over the coming horizon.

Marketers see one number per member, the *churn risk*, and a band cut from it (`risk_band`: low below
0.3, high from 0.6, by default). The number is a probability in [0, 1] with one meaning for every
model: the chance that the member makes no purchase in the `horizon_days` days after the scoring
date. Three models produce it behind one interface, `ChurnModel`: `fit(history, as_of)` learns from
purchases on or before `as_of` only, and `churn_risk(snapshot)` scores the customers of a `Snapshot`.

BG/NBD (`BGNBD`, `BGNBDChurn`; Fader, Hardie & Lee 2005, "Counting your customers the easy way")
    A generative model of repeat buying where nobody cancels: members just stop coming back. While
    alive a member buys as a Poisson process with rate lambda; after each repeat purchase they drop
    out for good with probability p. Across members lambda ~ Gamma(r, alpha) and p ~ Beta(a, b). The
    four parameters are fitted by maximum likelihood from three numbers per member, measured from their
    first purchase: x (repeat purchases), t_x (time of the last one) and T (age). It gives P(alive),
    the expected purchases in the next t, and
        P(no purchase in the next t) = 1 - P(alive) * (1 - ((alpha+T) / (alpha+T+t))^(r+x)),
    because an alive member's posterior rate is Gamma(r+x, alpha+T) and dropout only follows a
    purchase. That is its churn risk. 1 - P(alive) is not: it is 0 for every member who never came
    back, however long ago their one visit was, and on CDNOW it ranks churners worse than chance.
    It needs no labels, so it works from a program's first day.

Shallow CART (`TreeChurn`) and logistic regression (`LogisticChurn`, the default)
    Supervised models over features known at a cut-off (`churn_features`: recency, visits, spend,
    tenure, usual gap between visits, how many usual gaps overdue, and the BG/NBD probabilities),
    labelled with what happened next: no purchase in the following `horizon_days`. `fit(history,
    as_of)` trains at the cut-off `as_of - horizon_days`, so the labels end at `as_of`: training never
    looks past the data a model is given ("train at now minus the horizon, score at now"). Their risk
    is the churn rate of similar members over `horizon_days`. The depth-4 tree is 16 rules a marketer
    can read, with risk = the churn share of the member's leaf. The logistic model gives every member
    their own rank and ranked churners best on CDNOW, so it is the one whose risk marketers see.

The purchases and each customer's measures at a date are `purchase_log`; the BG/NBD's fitting and
formulas, `bgnbd`. Everything here is numpy/scipy/scikit-learn over arrays: no database, so it runs
the same in a job, a test or a notebook.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.tree import DecisionTreeClassifier, export_text

from loyalty.insights.bgnbd import BGNBD
from loyalty.insights.purchase_log import DAYS_PER_WEEK, EventLog, Snapshot, as_day, churned_within, take_snapshot

DEFAULT_RISK_CUTS = (0.3, 0.6)


FEATURE_NAMES = (
    "recency_days",
    "purchase_days",
    "tenure_days",
    "total_spend",
    "mean_spend",
    "usual_gap_days",
    "overdue_ratio",
    "p_alive",
    "p_no_purchase",
    "expected_purchases",
)


def churn_features(snapshot: Snapshot, horizon_days: int) -> np.ndarray:
    """One row per snapshot customer, columns as FEATURE_NAMES; NaN where a one-visit customer has no gap.

    The BG/NBD columns come from a BG/NBD fitted on this same snapshot, so they too know nothing past
    `snapshot.as_of`.
    """
    x, t_x, T = snapshot.bgnbd_inputs()
    bgnbd = BGNBD().fit(x, t_x, T)
    horizon_weeks = horizon_days / DAYS_PER_WEEK
    usual_gap = snapshot.usual_gap_days
    columns = (
        snapshot.recency_days,
        snapshot.purchase_days,
        snapshot.tenure_days,
        snapshot.total_spend,
        snapshot.total_spend / snapshot.purchase_days,
        usual_gap,
        snapshot.recency_days / usual_gap,  # how many usual gaps overdue; NaN stays NaN
        bgnbd.probability_alive(x, t_x, T),
        bgnbd.probability_no_purchase(horizon_weeks, x, t_x, T),
        bgnbd.expected_purchases(horizon_weeks, x, t_x, T),
    )
    return np.column_stack(columns).astype(float)


def features_and_labels(log: EventLog, cutoff, horizon_days: int) -> tuple[Snapshot, np.ndarray, np.ndarray]:
    """Features from events up to `cutoff`, and churn labels from the `horizon_days` after it."""
    snapshot = take_snapshot(log, cutoff)
    return snapshot, churn_features(snapshot, horizon_days), churned_within(log, snapshot, horizon_days)


class ChurnModel(Protocol):
    """What the scoring job needs from any churn model."""

    horizon_days: int

    def fit(self, history: EventLog, as_of) -> ChurnModel:
        """Learn from events on or before `as_of` only."""

    def churn_risk(self, snapshot: Snapshot) -> np.ndarray:
        """P(no purchase in the next horizon_days) for each customer in `snapshot`, in its order."""


@dataclass
class BGNBDChurn:
    """Churn risk straight from the BG/NBD: no labels needed, so it works from a member's first day."""

    horizon_days: int
    bgnbd: BGNBD = field(default_factory=BGNBD)

    def fit(self, history: EventLog, as_of) -> BGNBDChurn:
        self.bgnbd.fit(*take_snapshot(history, as_of).bgnbd_inputs())
        return self

    def churn_risk(self, snapshot: Snapshot) -> np.ndarray:
        x, t_x, T = snapshot.bgnbd_inputs()
        return self.bgnbd.probability_no_purchase(self.horizon_days / DAYS_PER_WEEK, x, t_x, T)


@dataclass
class _SupervisedChurn:
    """Shared training loop: learn at `as_of - horizon_days` what happened up to `as_of`.

    The training labels end exactly at `as_of`, and the history is cut there before anything else,
    so a model fitted "as of now" cannot have seen the future whatever log it is handed.
    """

    horizon_days: int
    estimator: object = field(default=None, init=False, repr=False)

    def fit(self, history: EventLog, as_of):
        as_of = as_day(as_of)
        history = history.until(as_of)
        _, features, churned = features_and_labels(history, as_of - self.horizon_days, self.horizon_days)
        if len(np.unique(churned)) < 2:
            raise ValueError(
                f"training needs members who bought before {np.datetime64(as_of - self.horizon_days, 'D')}"
                " and both churners and returners after it; with less history, use BGNBDChurn"
            )
        # A column nobody has a value for means the training members never showed it: no one had come
        # back yet, so there is no usual gap, and the BG/NBD's dropout (a, b) is not identified, so its
        # expected purchases are undefined. Nothing about repeat buying can be learnt from such a
        # history, and a model that silently dropped those columns would then score repeat buyers
        # without the features that matter most for them. Refuse, as for a history too short to label.
        unobserved = [name for name, column in zip(FEATURE_NAMES, features.T, strict=True) if np.isnan(column).all()]
        if unobserved:
            raise ValueError(
                f"no training member has a value for {', '.join(unobserved)}: nobody had bought twice by"
                f" {np.datetime64(as_of - self.horizon_days, 'D')}; with such history, use BGNBDChurn"
            )
        self.estimator = self._make_estimator(len(churned)).fit(features, churned)
        return self

    def _make_estimator(self, n_customers: int):
        raise NotImplementedError

    def _churn_probability(self, features: np.ndarray) -> np.ndarray:
        churned_column = list(self.estimator.classes_).index(True)
        return self.estimator.predict_proba(features)[:, churned_column]


@dataclass
class TreeChurn(_SupervisedChurn):
    """A depth-4 CART: 16 rules a marketer can read; its risk is the churn share of the member's leaf.

    Members in one leaf share one number, so the leaf gives no order among them. BG/NBD P(no purchase)
    breaks those ties, by less than a millionth: the displayed risk is the leaf's, the ranking is finer.
    """

    max_depth: int = 4

    def _make_estimator(self, n_customers: int) -> DecisionTreeClassifier:
        # Leaves of at least 1% of customers (and never under 50) keep the rules about groups, not people.
        min_leaf = max(50, n_customers // 100)
        return DecisionTreeClassifier(max_depth=self.max_depth, min_samples_leaf=min_leaf, random_state=0)

    def churn_risk(self, snapshot: Snapshot) -> np.ndarray:
        features = churn_features(snapshot, self.horizon_days)
        leaf_risk = self._churn_probability(features)
        tie_break = features[:, FEATURE_NAMES.index("p_no_purchase")]
        return np.clip(leaf_risk + 1e-6 * (tie_break - 0.5), 0.0, 1.0)

    def rules(self) -> str:
        """The fitted tree as indented if/else text, for the marketing console."""
        return export_text(self.estimator, feature_names=list(FEATURE_NAMES), show_weights=True)


@dataclass
class LogisticChurn(_SupervisedChurn):
    """Logistic regression over the same features, log-scaled: the default model.

    A smooth score gives every member their own rank instead of 16 tied groups, and on CDNOW it ranked
    churners better than the tree or the BG/NBD alone (tests/insights/test_churn_models.py). Spend and
    counts are log-scaled because a few big spenders would otherwise set the scale for everyone.
    """

    def _make_estimator(self, n_customers: int) -> Pipeline:
        return make_pipeline(
            FunctionTransformer(_signed_log),
            # A one-visit member has no usual gap; the indicator lets the model price that in.
            SimpleImputer(strategy="constant", fill_value=0.0, add_indicator=True),
            StandardScaler(),
            LogisticRegression(max_iter=1000),
        )

    def churn_risk(self, snapshot: Snapshot) -> np.ndarray:
        return self._churn_probability(churn_features(snapshot, self.horizon_days))


def _signed_log(values: np.ndarray) -> np.ndarray:
    """log(1+|v|) with v's sign: refunds can make spend negative."""
    return np.sign(values) * np.log1p(np.abs(values))


def default_churn_model(horizon_days: int) -> ChurnModel:
    """The model whose risk marketers see: the one that ranked churners best on CDNOW (see tests)."""
    return LogisticChurn(horizon_days=horizon_days)


def score_members(model: ChurnModel, history: EventLog, now) -> tuple[np.ndarray, np.ndarray]:
    """Production loop: fit on history up to `now`, score everyone who has bought by `now`.

    Returns (customer_ids, churn_risk). A supervised model trains at `now - horizon` against what
    happened up to `now`, then scores at `now`: the freshest labels that exist without waiting.
    """
    model.fit(history, now)
    snapshot = take_snapshot(history, now)
    return snapshot.customer_ids, model.churn_risk(snapshot)


def risk_band(risk, cuts: tuple[float, float] = DEFAULT_RISK_CUTS):
    """'low' below cuts[0], 'high' from cuts[1] up, 'medium' between; a string, or an array of them."""
    low_cut, high_cut = cuts
    if not 0.0 <= low_cut < high_cut <= 1.0:
        raise ValueError(f"risk cuts must satisfy 0 <= low < high <= 1, got {cuts!r}")
    bands = np.select([np.asarray(risk) < low_cut, np.asarray(risk) < high_cut], ["low", "medium"], "high")
    return str(bands) if bands.ndim == 0 else bands


def churn_facts(recency_days: float, frequency: int, usual_gap_days: float | None) -> str:
    """The facts behind a risk, kept with the score in no particular language: "r155 f2 g40" is no
    purchase in 155 days, bought twice, usually 40 days between purchases ("g-": no usual gap yet).
    insights.wording.describe_churn_facts puts them in the reader's language."""
    gap = None if usual_gap_days is None or np.isnan(usual_gap_days) else round(usual_gap_days)
    return facts_code(round(recency_days), int(frequency), gap)


def facts_code(recency_days: int, frequency: int, usual_gap_days: int | None) -> str:
    """The one spelling of the code (whole days; None: no usual gap yet)."""
    return f"r{recency_days} f{frequency} g{'-' if usual_gap_days is None else usual_gap_days}"
