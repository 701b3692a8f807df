"""Churn models against the published CDNOW results, plus small hand-built cases.

CDNOW: 23,570 customers who first bought from an online CD store in Q1 1997, followed to June 1998.
The BG/NBD paper fits a 2,357-customer tenth of them over a 39-week calibration period ending
1997-09-30; the churn checks ask, for everyone, "no purchase in the 39 weeks after 1997-09-30?".
"""


import numpy as np
import pytest
from cdnow import CALIBRATION_END, HORIZON_DAYS, master_log, sample_log, sample_summary
from scipy import optimize
from sklearn.metrics import roc_auc_score

from loyalty.insights.bgnbd import BGNBD, _negative_log_likelihood
from loyalty.insights.churn_models import (
    FEATURE_NAMES,
    BGNBDChurn,
    LogisticChurn,
    TreeChurn,
    churn_facts,
    default_churn_model,
    features_and_labels,
    risk_band,
    score_members,
)
from loyalty.insights.purchase_log import EventLog, churned_within, take_snapshot

# The supervised models may only learn from labels that end by the evaluation cut-off. With history
# starting 1997-01-01, a 39-week training horizon would need a training cut-off before anyone joined,
# so they train on 1997-06-30 against the 92 days up to 1997-09-30 and are judged on the 39 weeks after.
TRAINING_HORIZON_DAYS = 92

# Fader, Hardie & Lee (2005), table 1 / section 5.
PAPER_PARAMETERS = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PAPER_LOG_LIKELIHOOD = -9582.4


def significant(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}g}"


def test_bgnbd_reproduces_the_paper_on_the_cdnow_sample():
    model = BGNBD().fit(*sample_summary())

    for name, published in PAPER_PARAMETERS.items():
        assert significant(getattr(model, name)) == significant(published), name
    assert model.log_likelihood == pytest.approx(PAPER_LOG_LIKELIHOOD, abs=0.05)


def test_snapshot_rebuilds_the_papers_summary_from_raw_purchases():
    """The published summary rounds weeks to 2 decimals; our days/7 must agree within that rounding."""
    x, t_x, T = sample_summary()

    snapshot = take_snapshot(sample_log(), CALIBRATION_END)
    our_x, our_t_x, our_T = snapshot.bgnbd_inputs()

    assert len(snapshot.customer_ids) == 2357
    np.testing.assert_array_equal(our_x, x)
    np.testing.assert_allclose(our_t_x, t_x, atol=0.005)
    np.testing.assert_allclose(our_T, T, atol=0.005)


def test_likelihood_gradient_matches_finite_differences():
    """A wrong analytic gradient lets L-BFGS stop short of the optimum without any error."""
    x, t_x, T = sample_summary()
    weights = np.full(len(x), 1 / len(x))
    log_params = np.log([0.5, 3.0, 0.6, 2.0])

    error = optimize.check_grad(
        lambda p: _negative_log_likelihood(p, x, t_x, T, weights)[0],
        lambda p: _negative_log_likelihood(p, x, t_x, T, weights)[1],
        log_params,
    )

    assert error < 1e-5


def simulate_bgnbd(r, alpha, a, b, customers, rng):
    """Draw (x, t_x, T) in weeks from the BG/NBD story itself, with day-grained times like real data."""
    rate = rng.gamma(r, 1 / alpha, customers)
    dropout = rng.beta(a, b, customers)
    age = rng.integers(1, 40 * 7, customers) / 7.0
    x = np.zeros(customers)
    t_x = np.zeros(customers)
    clock = np.zeros(customers)
    buying = np.ones(customers, bool)
    while buying.any():
        clock = clock + rng.exponential(1.0, customers) / np.maximum(rate, 1e-12)
        buying &= clock <= age
        x[buying] += 1
        t_x[buying] = clock[buying]
        buying &= rng.random(customers) > dropout
    return x, np.round(t_x * 7) / 7, age


@pytest.mark.slow
def test_bgnbd_recovers_the_parameters_of_a_million_simulated_customers():
    """How long the fit takes is bench/scoring.py's to measure (a timed assert fails on a busy machine)."""
    rng = np.random.default_rng(5)
    truth = {"r": 0.25, "alpha": 4.4, "a": 0.8, "b": 2.4}
    x, t_x, T = simulate_bgnbd(**truth, customers=1_000_000, rng=rng)

    model = BGNBD().fit(x, t_x, T)

    for name, value in truth.items():
        assert getattr(model, name) == pytest.approx(value, rel=0.03), name


@pytest.fixture(scope="module")
def cdnow_evaluation():
    """Everyone's 1997-09-30 snapshot and the churn outcome over the following 39 weeks."""
    log = master_log()
    snapshot = take_snapshot(log, CALIBRATION_END)
    return log, snapshot, churned_within(log, snapshot, HORIZON_DAYS)


def test_churn_risk_ranks_cdnow_churners(cdnow_evaluation):
    log, snapshot, churned = cdnow_evaluation
    # The models are handed only the past: nothing after the cut-off can reach their training.
    past = log.until(CALIBRATION_END)
    models = {
        "BG/NBD P(no purchase)": BGNBDChurn(HORIZON_DAYS),
        "CART depth 4": TreeChurn(TRAINING_HORIZON_DAYS),
        "logistic (default)": default_churn_model(TRAINING_HORIZON_DAYS),
    }
    auc = {"days since last purchase": roc_auc_score(churned, snapshot.recency_days)}
    for name, model in models.items():
        auc[name] = roc_auc_score(churned, model.fit(past, CALIBRATION_END).churn_risk(snapshot))
    x, t_x, T = snapshot.bgnbd_inputs()
    not_alive = 1 - models["BG/NBD P(no purchase)"].bgnbd.probability_alive(x, t_x, T)
    auc["BG/NBD 1 - P(alive)"] = roc_auc_score(churned, not_alive)

    print(f"\nchurn rate {churned.mean():.3f} among {len(churned)} customers; ROC AUC:")
    for name, value in auc.items():
        print(f"  {name:28s} {value:.4f}")
    assert isinstance(models["logistic (default)"], LogisticChurn)
    assert auc["logistic (default)"] >= 0.77
    assert auc["logistic (default)"] > max(auc["days since last purchase"], auc["BG/NBD P(no purchase)"])


def test_training_never_sees_past_as_of(cdnow_evaluation):
    """Fitting on the full log or on the log cut at as_of must give the very same risks."""
    log, snapshot, _ = cdnow_evaluation

    risk_from_full_log = LogisticChurn(TRAINING_HORIZON_DAYS).fit(log, CALIBRATION_END).churn_risk(snapshot)
    risk_from_past_only = (
        LogisticChurn(TRAINING_HORIZON_DAYS).fit(log.until(CALIBRATION_END), CALIBRATION_END).churn_risk(snapshot)
    )

    np.testing.assert_array_equal(risk_from_full_log, risk_from_past_only)


def test_score_members_returns_everyone_who_bought_with_a_probability(cdnow_evaluation):
    log, _, _ = cdnow_evaluation

    customer_ids, risk = score_members(TreeChurn(TRAINING_HORIZON_DAYS), log.until(CALIBRATION_END), CALIBRATION_END)

    assert len(customer_ids) == 23570 == len(risk)
    assert ((risk >= 0) & (risk <= 1)).all()


def small_log():
    """Customer 1: three visits (two receipts on day 10). Customer 2: one visit, then one just after the cut-off."""
    return EventLog.from_arrays(
        customer_ids=[1, 1, 1, 1, 2, 2],
        dates=np.array(
            ["2024-01-01", "2024-01-11", "2024-01-11", "2024-02-10", "2024-01-20", "2024-03-02"], dtype="datetime64[D]"
        ),
        amounts=[10.0, 5.0, 7.0, 20.0, 30.0, 15.0],
    )


def test_features_use_only_events_up_to_the_cut_off_and_labels_only_after():
    snapshot, features, churned = features_and_labels(small_log(), np.datetime64("2024-03-01"), horizon_days=10)
    column = {name: features[:, i] for i, name in enumerate(FEATURE_NAMES)}

    np.testing.assert_array_equal(snapshot.customer_ids, [1, 2])
    np.testing.assert_array_equal(column["purchase_days"], [3, 1])  # two receipts on 2024-01-11 are one visit
    np.testing.assert_array_equal(column["total_spend"], [42.0, 30.0])  # 2024-03-02 is after the cut-off
    np.testing.assert_array_equal(column["recency_days"], [20, 41])
    np.testing.assert_array_equal(column["tenure_days"], [60, 41])
    assert column["usual_gap_days"][0] == 20 and np.isnan(column["usual_gap_days"][1])
    assert column["overdue_ratio"][0] == 1.0
    np.testing.assert_array_equal(churned, [True, False])  # customer 2 came back the day after


def test_supervised_model_refuses_history_too_short_to_label():
    """A program younger than the horizon has no labelled past; the caller must fall back to the BG/NBD."""
    with pytest.raises(ValueError, match="BGNBDChurn"):
        LogisticChurn(horizon_days=90).fit(small_log(), np.datetime64("2024-03-01"))


def test_supervised_model_refuses_training_members_who_never_bought_twice():
    """No repeat buyer before the training cut-off: gaps and dropout were never observed, so there is
    nothing to learn about them (and the BG/NBD's a and b are unidentified). The caller falls back."""
    one_visit_each = EventLog.from_arrays(
        np.array([1, 2, 1, 3]),
        np.array(["2024-01-01", "2024-01-05", "2024-02-20", "2024-02-25"], dtype="datetime64[D]"),
        np.array([10.0, 20.0, 10.0, 5.0]),
    )
    for model in (LogisticChurn(horizon_days=30), TreeChurn(horizon_days=30)):
        # The pole (a = 1) divides by zero on the way, as score_history expects and allows.
        with np.errstate(divide="ignore", invalid="ignore"), \
                pytest.raises(ValueError, match="usual_gap_days, overdue_ratio, expected_purchases.*BGNBDChurn"):
            model.fit(one_visit_each, np.datetime64("2024-03-01"))


def test_label_window_includes_its_last_day_and_nothing_after():
    snapshot = take_snapshot(small_log(), "2024-02-25")  # customer 2 returns 6 days later

    np.testing.assert_array_equal(churned_within(small_log(), snapshot, horizon_days=6), [True, False])
    np.testing.assert_array_equal(churned_within(small_log(), snapshot, horizon_days=5), [True, True])


@pytest.fixture
def paper_model():
    return BGNBD(**PAPER_PARAMETERS)


def test_customer_who_never_returned_is_alive_for_sure(paper_model):
    """Dropout only happens after a repeat purchase, so x = 0 means P(alive) = 1 however old."""
    np.testing.assert_array_equal(paper_model.probability_alive([0, 0, 0], [0, 0, 0], [1, 20, 39]), 1.0)


def test_probability_alive_falls_as_the_last_purchase_ages(paper_model):
    weeks_since_last = np.array([0.0, 5.0, 15.0, 30.0])
    T = 39.0

    p_alive = paper_model.probability_alive(np.full(4, 4), T - weeks_since_last, np.full(4, T))

    # Even a purchase today may have been the last: the dropout coin is tossed at every repeat purchase.
    assert p_alive[0] == pytest.approx(1 / (1 + PAPER_PARAMETERS["a"] / (PAPER_PARAMETERS["b"] + 3)))
    assert (np.diff(p_alive) < 0).all()


def test_frequent_buyer_gone_quiet_is_riskier_than_a_rare_one(paper_model):
    """The BG/NBD signature: ten purchases then silence is more alarming than two purchases then silence."""
    p_alive = paper_model.probability_alive([2, 10], [10.0, 10.0], [39.0, 39.0])

    assert p_alive[1] < p_alive[0]


def test_expectation_and_no_purchase_probability_move_with_the_horizon(paper_model):
    x, t_x, T = np.array([0, 3, 10]), np.array([0.0, 30.0, 37.0]), np.array([39.0, 39.0, 39.0])

    short, long = paper_model.expected_purchases(13, x, t_x, T), paper_model.expected_purchases(52, x, t_x, T)
    silent_short = paper_model.probability_no_purchase(13, x, t_x, T)
    silent_long = paper_model.probability_no_purchase(52, x, t_x, T)

    assert (short > 0).all() and (long > short).all()
    assert (silent_long < silent_short).all() and ((silent_short > 0) & (silent_short < 1)).all()
    assert (np.argsort(-short) == [2, 1, 0]).all()  # the busy recent buyer is expected to buy most


def test_bgnbd_churn_risk_is_one_minus_p_alive_plus_the_silent_alive(paper_model):
    """With an infinitely long horizon, no alive customer stays silent: the risk tends to 1 - P(alive)."""
    x, t_x, T = np.array([1, 5]), np.array([5.0, 20.0]), np.array([39.0, 39.0])

    far = paper_model.probability_no_purchase(1e9, x, t_x, T)

    np.testing.assert_allclose(far, 1 - paper_model.probability_alive(x, t_x, T), atol=1e-6)


@pytest.mark.parametrize(
    ("risk", "band"), [(0.0, "low"), (0.299, "low"), (0.3, "medium"), (0.599, "medium"), (0.6, "high"), (1.0, "high")]
)
def test_risk_band_default_cuts(risk, band):
    assert risk_band(risk) == band


def test_risk_band_configurable_cuts_and_arrays():
    assert risk_band(0.5, cuts=(0.5, 0.8)) == "medium"
    assert risk_band(0.45, cuts=(0.5, 0.8)) == "low"
    np.testing.assert_array_equal(risk_band(np.array([0.1, 0.5, 0.9]), cuts=(0.2, 0.7)), ["low", "medium", "high"])
    with pytest.raises(ValueError):
        risk_band(0.5, cuts=(0.7, 0.2))


def test_churn_facts_are_kept_as_a_language_neutral_code():
    assert churn_facts(155, 2, 40) == "r155 f2 g40"
    assert churn_facts(0, 1, float("nan")) == "r0 f1 g-"
    assert churn_facts(1.4, 5, 1.2) == "r1 f5 g1"
