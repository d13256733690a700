"""DeLong's test against a brute-force computation, and the bootstrap interval."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from modelops.pipeline.stats import bootstrap_auc_interval, delong_test


def brute_force_delong(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Difference and its variance straight from the Mann-Whitney kernel (O(m*n))."""
    pos, neg = y == 1, y == 0

    def components(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        kernel = (s[pos][:, None] > s[neg][None, :]) + 0.5 * (s[pos][:, None] == s[neg][None, :])
        return kernel.mean(axis=1), kernel.mean(axis=0)

    v10a, v01a = components(a)
    v10b, v01b = components(b)
    var = (np.var(v10a - v10b, ddof=1) / pos.sum()) + (np.var(v01a - v01b, ddof=1) / neg.sum())
    return float(v10a.mean() - v10b.mean()), float(var)


def test_delong_matches_brute_force_with_ties() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    a = np.round(y + rng.normal(0, 1.0, 300), 1)  # rounding creates ties
    b = np.round(y + rng.normal(0, 1.6, 300), 1)
    result = delong_test(y, a, b)
    diff, var = brute_force_delong(y, a, b)
    assert result.auc_a == pytest.approx(roc_auc_score(y, a), abs=1e-12)
    assert result.auc_b == pytest.approx(roc_auc_score(y, b), abs=1e-12)
    assert result.difference == pytest.approx(diff, abs=1e-12)
    assert result.std_error == pytest.approx(np.sqrt(var), rel=1e-9)
    assert result.ci_low < result.difference < result.ci_high


def test_delong_significance_behaves() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    strong, weak = y + rng.normal(0, 1, 2000), y + rng.normal(0, 3, 2000)
    assert delong_test(y, strong, weak).p_value < 1e-6
    same = delong_test(y, strong, strong)
    assert same.p_value == 1.0 and same.difference == 0.0
    with pytest.raises(ValueError, match="both classes"):
        delong_test(np.ones(10), strong[:10], weak[:10])


def test_bootstrap_interval_brackets_auc() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 800)
    scores = y + rng.normal(0, 1.2, 800)
    low, high = bootstrap_auc_interval(y, scores, 300, 0.95, seed=5)
    auc = roc_auc_score(y, scores)
    assert low < auc < high
    assert 0.02 < high - low < 0.12
    assert (low, high) == bootstrap_auc_interval(y, scores, 300, 0.95, seed=5)
