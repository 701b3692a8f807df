"""The BG/NBD model of repeat buying (Fader, Hardie & Lee 2005, "Counting your customers the easy
way"): its four population parameters fitted by maximum likelihood, with an analytic gradient, and
the probabilities it gives a customer (alive, expected purchases, no purchase in the next t). Times
are in weeks, as in the paper; how its churn risk is used is in `churn_models`. Arrays only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special


@dataclass
class BGNBD:
    """The BG/NBD model's four population parameters, fitted by maximum likelihood."""

    r: float = float("nan")
    alpha: float = float("nan")
    a: float = float("nan")
    b: float = float("nan")
    log_likelihood: float = float("nan")

    def fit(self, x, t_x, T) -> BGNBD:
        """Fit on per-customer (x, t_x, T).

        Customers share (x, t_x, T) far more often than not (day-grained dates, cohorts that joined
        together), so the likelihood is summed over distinct rows with counts as weights: a million
        day-grained customers collapse to about an eighth as many rows, and the fit takes seconds.
        """
        rows, counts = np.unique(np.column_stack([x, t_x, T]).astype(float), axis=0, return_counts=True)
        x, t_x, T = rows.T
        # Per-customer weights make the objective a mean, so one tolerance suits 2,000 or 2,000,000 rows.
        weights = counts / counts.sum()
        start = np.log([1.0, max(float(weights @ T), 1e-3), 1.0, 1.0])
        result = optimize.minimize(
            lambda log_params: _negative_log_likelihood(log_params, x, t_x, T, weights),
            start,
            jac=True,
            method="L-BFGS-B",
            # Bounds keep exp() finite while the optimiser explores; real fits land well inside them.
            bounds=[(-20.0, 20.0)] * 4,
            options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 1000},
        )
        self.r, self.alpha, self.a, self.b = (float(v) for v in np.exp(result.x))
        self.log_likelihood = -float(result.fun) * float(counts.sum())
        return self

    def _log_odds_dead(self, x, t_x, T) -> np.ndarray:
        """ln[(a / (b+x-1)) * ((alpha+T) / (alpha+t_x))^(r+x)], the log odds of having dropped out."""
        x, t_x, T = (np.asarray(v, float) for v in (x, t_x, T))
        repeat_buyer = x > 0
        log_odds = (
            np.log(self.a)
            - np.log(np.where(repeat_buyer, self.b + x - 1, 1.0))
            + (self.r + x) * (np.log(self.alpha + T) - np.log(self.alpha + t_x))
        )
        # Dropout happens only after a purchase, so someone who never came back cannot have dropped out.
        return np.where(repeat_buyer, log_odds, -np.inf)

    def probability_alive(self, x, t_x, T) -> np.ndarray:
        """P(still buying | x, t_x, T), equation (6) of the paper."""
        return special.expit(-self._log_odds_dead(x, t_x, T))

    def expected_purchases(self, t, x, t_x, T) -> np.ndarray:
        """E[purchases in (T, T+t] | x, t_x, T], equation (10) of the paper."""
        x, t_x, T = (np.asarray(v, float) for v in (x, t_x, T))
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        hypergeometric = special.hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
        if_alive = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hypergeometric)
        return if_alive * self.probability_alive(x, t_x, T)

    def probability_no_purchase(self, t, x, t_x, T) -> np.ndarray:
        """P(no purchase in (T, T+t] | x, t_x, T): dead already, or alive and the Poisson clock never rang."""
        x, T = np.asarray(x, float), np.asarray(T, float)
        silent_if_alive = ((self.alpha + T) / (self.alpha + T + t)) ** (self.r + x)
        return 1 - self.probability_alive(x, t_x, T) * (1 - silent_if_alive)


def _negative_log_likelihood(log_params, x, t_x, T, weights) -> tuple[float, np.ndarray]:
    """Weighted BG/NBD negative log-likelihood (paper, equation 4) and its gradient in log-parameters.

    ln L = ln G(r+x) - ln G(r) + r ln(alpha) + ln B(a, b+x) - ln B(a, b) + ln(e^A3 + [x>0] e^A4),
    A3 = -(r+x) ln(alpha+T),  A4 = ln a - ln(b+x-1) - (r+x) ln(alpha+t_x).
    The last term goes through logaddexp because e^A3 underflows for heavy buyers.
    """
    r, alpha, a, b = np.exp(log_params)
    repeat_buyer = x > 0
    a3 = -(r + x) * np.log(alpha + T)
    b_x_1 = np.where(repeat_buyer, b + x - 1, 1.0)
    a4 = np.log(a) - np.log(b_x_1) - (r + x) * np.log(alpha + t_x)
    a4 = np.where(repeat_buyer, a4, -np.inf)
    tail = np.logaddexp(a3, a4)
    log_lik = (
        special.gammaln(r + x)
        - special.gammaln(r)
        + r * np.log(alpha)
        + special.betaln(a, b + x)
        - special.betaln(a, b)
        + tail
    )
    share3 = np.exp(a3 - tail)  # weight of the "still alive" branch; 1 for customers with x = 0
    share4 = 1 - share3
    d_r = special.digamma(r + x) - special.digamma(r) + np.log(alpha) - share3 * np.log(alpha + T)
    d_r -= share4 * np.log(alpha + t_x)
    d_alpha = r / alpha - (r + x) * (share3 / (alpha + T) + share4 / (alpha + t_x))
    d_a = special.digamma(a + b) - special.digamma(a + b + x) + share4 / a
    d_b = (
        special.digamma(b + x)
        - special.digamma(a + b + x)
        - special.digamma(b)
        + special.digamma(a + b)
        - share4 / b_x_1
    )
    gradient = np.array([weights @ d for d in (d_r, d_alpha, d_a, d_b)]) * np.array([r, alpha, a, b])
    return -float(weights @ log_lik), -gradient
