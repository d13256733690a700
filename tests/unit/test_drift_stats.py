"""PSI, binning, KS and chi-squared of src/modelops/drift.py, on hand-made and real credit data."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelops.bench.drift import inject_drift
from modelops.config import DriftParams, Params
from modelops.errors import DataError
from modelops.monitor.drift import (
    SCORE,
    bin_counts,
    chi2_two_sample,
    compare,
    ks_exact,
    ks_on_grid,
    numeric_values,
    psi,
    reference_shares,
)
from modelops.pipeline.data import coerce_features
from modelops.registry.reference import MISSING, OTHER, build_reference


@pytest.fixture(scope="module")
def reference(params: Params, split_frames: tuple[pd.DataFrame, pd.DataFrame]) -> dict[str, Any]:
    """The reference `train` saves, built from the real train split (scores: a fixed ramp)."""
    features = coerce_features(split_frames[0], params.data)
    scores = np.linspace(0.01, 0.99, len(features))
    return build_reference(
        features,
        params.data.numeric_features,
        params.data.categorical_features,
        scores,
        params.train.reference_bins,
    )


def test_psi_formula_and_floor() -> None:
    assert psi(np.array([0.2, 0.8]), np.array([0.2, 0.8]), 1e-4) == 0.0
    expected = (0.5 - 0.2) * math.log(0.5 / 0.2) + (0.5 - 0.8) * math.log(0.5 / 0.8)
    assert psi(np.array([0.5, 0.5]), np.array([0.2, 0.8]), 1e-4) == pytest.approx(expected)
    # an empty reference bin is floored at epsilon: finite, and large when it fills up
    filled = psi(np.array([0.5, 0.5]), np.array([1.0, 0.0]), 1e-4)
    assert math.isfinite(filled) and filled > 3
    small, large = (
        psi(np.array([0.3 + d, 0.7 - d]), np.array([0.3, 0.7]), 1e-4) for d in (0.05, 0.2)
    )
    assert 0 < small < large


def test_binning_the_training_rows_gives_back_the_reference(
    reference: dict[str, Any], params: Params, split_frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train = split_frames[0]
    for feature in params.data.features:
        spec = reference["features"][feature]
        labels, counts = bin_counts(train[feature], spec, feature)
        shares = reference_shares(spec, labels)
        assert counts.sum() == len(train)
        np.testing.assert_allclose(counts / len(train), shares, atol=1e-6)
        assert psi(counts / len(train), shares, 1e-4) == pytest.approx(0, abs=1e-9)


def test_numeric_bins_follow_the_reference_convention() -> None:
    spec = {"type": "numeric", "edges": [10.0, 20.0], "proportions": {}}
    labels, counts = bin_counts(pd.Series([10.0, 10.5, 20.0, 25.0, np.nan]), spec, "x")
    assert labels == ["0", "1", "2", MISSING]
    assert counts.tolist() == [1, 2, 1, 1]  # a value on an edge belongs to the lower bin


def test_categorical_bins_map_missing_and_unseen_values() -> None:
    spec = {"type": "categorical", "proportions": {"owner": 0.6, "rent": 0.4}}
    values = pd.Series(["owner", "rent", None, "castle", "castle"], dtype="object")
    labels, counts = bin_counts(values, spec, "Home")
    assert labels == ["owner", "rent", MISSING, OTHER]
    assert counts.tolist() == [1, 1, 1, 2]


def test_text_in_a_numeric_column_is_refused_by_name() -> None:
    with pytest.raises(DataError, match=r"'Income': 1 value\(s\) are not numbers.*'lots'"):
        numeric_values(pd.Series(["100", "lots", None]), "Income")


def test_ks_on_the_quantile_grid_is_conservative(
    reference: dict[str, Any], params: Params, split_frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    """Evaluating the CDFs on the reference edges never exceeds the exact KS statistic."""
    train, test = split_frames
    for rows in (test, inject_drift(test, seed=1)):
        for feature in ("Income", "Amount", "Age", "Seniority"):
            spec = reference["features"][feature]
            labels, counts = bin_counts(rows[feature], spec, feature)
            grid_d, grid_p = ks_on_grid(counts, reference_shares(spec, labels), len(train))
            exact_d, _ = ks_exact(
                numeric_values(rows[feature], feature), numeric_values(train[feature], feature)
            )
            assert grid_d <= exact_d + 1e-9
            assert 0 <= grid_p <= 1


def test_chi_squared_separates_same_from_moved_shares() -> None:
    same = chi2_two_sample(np.array([300, 200, 0]), np.array([600, 400, 0]))
    moved = chi2_two_sample(np.array([150, 350, 0]), np.array([600, 400, 0]))
    assert same[1] > 0.99
    assert moved[1] < 1e-10
    assert chi2_two_sample(np.array([10, 0]), np.array([20, 0])) == (0.0, 1.0)


def test_compare_flags_only_the_shifted_columns(
    reference: dict[str, Any], params: Params, split_frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    test = split_frames[1]
    calm = compare(test, reference, params.drift, params.data.features)
    assert calm.verdict == "ok", [(c.name, c.psi) for c in calm.columns]
    drifted = compare(inject_drift(test, seed=1), reference, params.drift, params.data.features)
    assert drifted.verdict == "drift"
    assert sorted(drifted.drifted) == ["Amount", "Home", "Income"]
    assert drifted.columns[0].status == "drift"  # sorted: drifted first, by PSI
    assert all(c.status == "ok" for c in drifted.columns if c.name not in drifted.drifted)
    for name in drifted.drifted:
        column = drifted.column(name)
        assert column.psi >= params.drift.psi_alert and column.significant
        assert column.test == ("chi2" if name == "Home" else "ks_grid")


def test_bonferroni_warning_and_min_rows(
    reference: dict[str, Any], params: Params, split_frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    test = split_frames[1]
    features = params.data.features
    scores = np.linspace(0.01, 0.99, len(test))
    report = compare(test, reference, params.drift, features, scores=scores)
    assert report.alpha_per_test == pytest.approx(params.drift.alpha / (len(features) + 1))
    assert report.column(SCORE).rows == len(test)
    plain = compare(test, reference, DriftParams(correction="none"), features)
    assert plain.alpha_per_test == plain.alpha

    moderate = inject_drift(test, seed=1, scale={"Income": 1.2}, move=None)
    warned = compare(moderate, reference, params.drift, features)
    assert warned.verdict == "warning"
    assert warned.warnings == ["Income"]
    assert params.drift.psi_warning <= warned.column("Income").psi < params.drift.psi_alert

    few = compare(inject_drift(test.head(100), seed=1), reference, params.drift, features)
    assert few.verdict == "inconclusive"
    assert any("fewer than drift.min_rows" in note for note in few.notes)


def test_compare_names_missing_columns(reference: dict[str, Any], params: Params) -> None:
    with pytest.raises(DataError, match="no entry for feature"):
        compare(pd.DataFrame({"x": [1]}), reference, params.drift, ["x"])
    with pytest.raises(DataError, match=r"no column\(s\) \['Income'\]"):
        compare(pd.DataFrame({"Age": [30]}), reference, params.drift, ["Age", "Income"])
