"""The gate: absolute floor, and champion comparison with a paired DeLong test."""

from __future__ import annotations

import numpy as np

from modelops.config import GateParams
from modelops.pipeline.gate import decide

GATE = GateParams(min_auc=0.7, max_auc_drop=0.01, alpha=0.05)


def scores(seed: int, noise: float, n: int = 1500) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return y, y + rng.normal(0, noise, n)


def test_no_champion_applies_absolute_threshold_only() -> None:
    y, good = scores(0, 0.8)
    report = decide(y, good, None, None, "run1", GATE)
    assert report.passed and report.champion is None
    assert "no champion" in report.to_markdown()
    _, useless = scores(1, 50.0)
    failed = decide(y, useless, None, None, "run2", GATE)
    assert not failed.passed
    assert "below gate.min_auc" in failed.reasons[0]


def test_rejects_a_deliberately_worse_model() -> None:
    y, champion = scores(2, 0.5)
    rng = np.random.default_rng(9)
    worse = champion + rng.normal(0, 0.6, len(y))  # same signal, extra noise: above the floor
    report = decide(y, worse, champion, "3", "run-worse", GATE)
    assert report.challenger_auc > GATE.min_auc
    assert not report.passed
    assert report.champion is not None and report.champion.p_value < GATE.alpha
    assert report.champion.difference < -GATE.max_auc_drop
    markdown = report.to_markdown()
    assert "FAILED" in markdown and "champion (version 3)" in markdown and "p =" in markdown


def test_accepts_an_equal_model() -> None:
    y, champion = scores(4, 0.8)
    report = decide(y, champion.copy(), champion, "3", "run-equal", GATE)
    assert report.passed
    assert report.champion is not None and report.champion.difference == 0.0


def test_small_insignificant_drop_passes() -> None:
    y, champion = scores(5, 0.8, n=400)
    rng = np.random.default_rng(11)
    slightly = champion + rng.normal(0, 0.25, len(y))
    report = decide(y, slightly, champion, "1", "run", GATE)
    assert report.champion is not None
    assert report.champion.p_value >= GATE.alpha or -report.champion.difference <= 0.01
    assert report.passed
