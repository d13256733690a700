"""False alarm rate and detection rate of the drift verdict, over many resamples of real data.

The full measurement (1000 resamples per size, dose-response of the shift) is
`make bench-drift`; this is a smaller run of the same code that must hold on every commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from modelops.bench.drift import inject_drift, resample_verdicts
from modelops.config import Params


@pytest.fixture(scope="module")
def model_and_reference(trained_model: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    import json

    import mlflow.sklearn

    model_dir = trained_model["model_dir"]
    reference = json.loads((model_dir / "extra_files" / "reference.json").read_text())
    return mlflow.sklearn.load_model(str(model_dir)), reference


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Scoring thousands of small batches: OpenMP threads only spin on a shared 2-core box."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def test_undrifted_resamples_are_not_flagged(
    model_and_reference: tuple[Any, dict[str, Any]],
    params: Params,
    split_frames: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    model, reference = model_and_reference
    train, test = split_frames
    fresh = resample_verdicts(test, model, reference, params, 500, 150, seed=11, replace=False)
    seen = resample_verdicts(train, model, reference, params, 500, 100, seed=12, replace=True)
    for name, result in (("held-out test rows", fresh), ("train bootstrap", seen)):
        print(
            f"false alarms, {name}, 500 rows x {result['rounds']}: drift {result['drift_rate']:.1%}"
            f", warning {result['warning_rate']:.1%}, max PSI p95 {result['max_psi_p95']}"
        )
        assert result["drift_rate"] <= 0.01, result
        assert result["warning_rate"] <= 0.05, result
        assert result["max_psi_p95"] < params.drift.psi_warning


def test_injected_drift_is_detected_in_nearly_every_resample(
    model_and_reference: tuple[Any, dict[str, Any]],
    params: Params,
    split_frames: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    model, reference = model_and_reference
    drifted = inject_drift(split_frames[1], seed=5)
    result = resample_verdicts(drifted, model, reference, params, 500, 60, seed=13, replace=False)
    print(f"detection, 500 drifted rows x 60: {result['columns_flagged']}")
    assert result["drift_rate"] == 1.0
    # Home's PSI on all drifted rows is about 0.34; on 500 of them it dips under 0.25 now and then
    for column in ("Income", "Amount", "Home"):
        assert result["columns_flagged"][column] / result["rounds"] >= 0.95, column
    assert set(result["columns_flagged"]) <= {"Income", "Amount", "Home", "__score__"}
