"""Statistics for model comparison: DeLong's paired AUC test and bootstrap intervals."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


def _midranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank."""
    return stats.rankdata(values, method="average")


def _structural_components(
    y: np.ndarray, scores: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """AUC and DeLong's placement values V10 (per positive) and V01 (per negative)."""
    positives, negatives = scores[y == 1], scores[y == 0]
    m, n = len(positives), len(negatives)
    rank_all = _midranks(np.concatenate([positives, negatives]))
    rank_pos, rank_neg = _midranks(positives), _midranks(negatives)
    v10 = (rank_all[:m] - rank_pos) / n
    v01 = 1.0 - (rank_all[m:] - rank_neg) / m
    auc = float(v10.mean())
    return auc, v10, v01


@dataclass(frozen=True)
class DelongResult:
    auc_a: float
    auc_b: float
    difference: float  # auc_a - auc_b
    std_error: float
    ci_low: float
    ci_high: float
    p_value: float  # two-sided, H0: equal AUCs


def delong_test(
    y: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray, confidence_level: float = 0.95
) -> DelongResult:
    """Paired DeLong test (DeLong et al., 1988) of two models scored on the same cases."""
    y = np.asarray(y).astype(int)
    if len(np.unique(y)) != 2:
        raise ValueError("DeLong test needs both classes in the labels")
    auc_a, v10_a, v01_a = _structural_components(y, np.asarray(scores_a, dtype=float))
    auc_b, v10_b, v01_b = _structural_components(y, np.asarray(scores_b, dtype=float))
    s10 = np.cov(np.vstack([v10_a, v10_b]))
    s01 = np.cov(np.vstack([v01_a, v01_b]))
    m, n = len(v10_a), len(v01_a)
    covariance = s10 / m + s01 / n
    variance = covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1]
    difference = auc_a - auc_b
    std_error = float(np.sqrt(max(variance, 0.0)))
    z_crit = stats.norm.ppf(0.5 + confidence_level / 2)
    if std_error == 0.0:
        p_value = 1.0 if difference == 0 else 0.0
    else:
        p_value = float(2 * stats.norm.sf(abs(difference) / std_error))
    return DelongResult(
        auc_a,
        auc_b,
        difference,
        std_error,
        float(difference - z_crit * std_error),
        float(difference + z_crit * std_error),
        p_value,
    )


def bootstrap_auc_interval(
    y: np.ndarray, scores: np.ndarray, rounds: int, confidence_level: float, seed: int
) -> tuple[float, float]:
    """Percentile bootstrap interval of ROC AUC, resampling cases with replacement.

    Each round draws the same resample as `roc_auc_score(y[idx], scores[idx])` would see and
    gets the same AUC, but from counts: the scores are ranked once, and a round is a few
    weighted bincounts (O(n) instead of a sort), so 1,000 rounds on 250,000 test rows take
    seconds, not minutes.
    """
    rng = np.random.default_rng(seed)
    y, scores = np.asarray(y), np.asarray(scores)
    n = len(y)
    levels, position = np.unique(scores, return_inverse=True)  # tied scores share a level
    # A case's level, with the negatives' levels shifted past the positives' (one bincount).
    shifted = np.where(y == 1, position, position + len(levels))
    aucs = []
    for _ in range(rounds):
        tally = np.bincount(shifted[rng.integers(0, n, n)], minlength=2 * len(levels))
        pos, neg = tally[: len(levels)].astype(np.float64), tally[len(levels) :]
        n_pos, n_neg = pos.sum(), neg.sum()
        if n_pos == 0 or n_neg == 0:
            continue
        below = np.cumsum(neg) - neg  # negatives scored strictly lower, per level
        aucs.append(float(np.dot(pos, below + 0.5 * neg) / (n_pos * n_neg)))
    tail = (1 - confidence_level) / 2 * 100
    low, high = np.percentile(aucs, [tail, 100 - tail])
    return float(low), float(high)


def delong_interval(
    y: np.ndarray, scores: np.ndarray, confidence_level: float = 0.95
) -> tuple[float, float, float]:
    """ROC AUC of one model and DeLong's confidence interval for it: (auc, low, high),
    clipped to [0, 1]. Analytic, so it costs one ranking instead of a thousand resamples."""
    y = np.asarray(y).astype(int)
    if len(np.unique(y)) != 2:
        raise ValueError("an AUC interval needs both classes in the labels")
    auc, v10, v01 = _structural_components(y, np.asarray(scores, dtype=float))
    variance = float(np.var(v10, ddof=1) / len(v10) + np.var(v01, ddof=1) / len(v01))
    half = float(stats.norm.ppf(0.5 + confidence_level / 2)) * np.sqrt(max(variance, 0.0))
    return auc, max(0.0, auc - half), min(1.0, auc + half)
