"""Drift detection on real credit data: false alarm rate on undrifted resamples, detection power.

    python -m modelops.bench.drift --out bench/results/drift.json

A model is fitted on the train split (no MLflow needed) and its reference saved as training
would. Undrifted rows are resamples of the train split (bootstrap) and subsamples of the
held-out test split (fresh rows from the same population); each is judged exactly as
`modelops drift` judges a batch. Drifted rows are test rows with income and loan amount scaled
up and a share of home owners turned into renters (`inject_drift`).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelops.config import Params, load_params
from modelops.monitor.drift import DriftReport, compare

DEFAULT_SHIFT = {"Income": 1.5, "Amount": 1.5}
DEFAULT_MOVE = ("Home", "owner", "rent", 0.5)


def inject_drift(
    frame: pd.DataFrame,
    seed: int = 0,
    scale: dict[str, float] | None = None,
    move: tuple[str, str, str, float] | None = DEFAULT_MOVE,
) -> pd.DataFrame:
    """A copy of `frame` with numeric columns scaled and a share of one category moved.

    `move` = (column, from, to, share): that share of the rows holding `from` get `to`.
    """
    out = frame.copy()
    for column, factor in (DEFAULT_SHIFT if scale is None else scale).items():
        out[column] = out[column] * factor
    if move is not None:
        column, source, target, share = move
        rng = np.random.default_rng(seed)
        rows = np.flatnonzero((out[column] == source).to_numpy())
        chosen = rng.choice(rows, size=round(len(rows) * share), replace=False)
        out.loc[out.index[chosen], column] = target
    return out


def fit_reference(params: Params, train: pd.DataFrame) -> tuple[Any, dict[str, Any]]:
    """The model and the reference that `modelops train` would save for this train split."""
    from modelops.pipeline.train import fit
    from modelops.registry.reference import build_reference

    model, features, _, _ = fit(params, train)
    scores = model.predict_proba(features)[:, 1]
    reference = build_reference(
        features,
        params.data.numeric_features,
        params.data.categorical_features,
        scores,
        params.train.reference_bins,
    )
    return model, reference


def judge(rows: pd.DataFrame, model: Any, reference: dict[str, Any], params: Params) -> DriftReport:
    from modelops.pipeline.evaluate import score

    return compare(
        rows, reference, params.drift, params.data.features, scores=score(model, rows, params)
    )


def resample_verdicts(
    source: pd.DataFrame,
    model: Any,
    reference: dict[str, Any],
    params: Params,
    rows: int,
    rounds: int,
    seed: int,
    replace: bool,
) -> dict[str, Any]:
    """Verdicts of `rounds` samples of `rows` rows; rates of drift and warning verdicts.

    `*_rate` count verdicts as the CLI gives them (inconclusive under drift.min_rows);
    `column_*_rate` count samples where any column reached that status, ignoring min_rows,
    which shows what the row minimum protects against.
    """
    rng = np.random.default_rng(seed)
    verdicts: Counter[str] = Counter()
    flagged: Counter[str] = Counter()
    warned: Counter[str] = Counter()
    any_drift = any_warning = 0
    top_psi = []
    for _ in range(rounds):
        index = rng.choice(len(source), size=rows, replace=replace)
        report = judge(source.iloc[index].reset_index(drop=True), model, reference, params)
        verdicts[report.verdict] += 1
        flagged.update(report.drifted)
        warned.update(report.warnings)
        any_drift += bool(report.drifted)
        any_warning += bool(report.drifted or report.warnings)
        top_psi.append(max(c.psi for c in report.columns))
    return {
        "rows": rows,
        "rounds": rounds,
        "resampling": "bootstrap" if replace else "without replacement",
        "drift_rate": verdicts["drift"] / rounds,
        "warning_rate": verdicts["warning"] / rounds,
        "column_drift_rate": any_drift / rounds,
        "column_warning_or_drift_rate": any_warning / rounds,
        "verdicts": dict(verdicts),
        "columns_flagged": dict(flagged),
        "columns_warned": dict(warned),
        "max_psi_p50": round(float(np.percentile(top_psi, 50)), 4),
        "max_psi_p95": round(float(np.percentile(top_psi, 95)), 4),
        "max_psi_max": round(float(np.max(top_psi)), 4),
    }


def run(params: Params, rounds: int, seed: int) -> dict[str, Any]:
    from modelops.pipeline.data import read_raw, split

    started = time.perf_counter()
    train, test = split(read_raw(params.data.path), params.data, params.split)
    model, reference = fit_reference(params, train)

    false_alarms = []
    for rows in (200, 500, 1000):
        false_alarms.append(
            {
                "source": "test split",
                **resample_verdicts(test, model, reference, params, rows, rounds, seed, False),
            }
        )
    for rows in (500, 2000):
        false_alarms.append(
            {
                "source": "train split",
                **resample_verdicts(train, model, reference, params, rows, rounds, seed, True),
            }
        )

    full = judge(inject_drift(test, seed), model, reference, params)
    injected = {
        "rows": full.rows,
        "verdict": full.verdict,
        "drifted": full.drifted,
        "psi": {c.name: c.psi for c in full.columns},
        "p_value": {c.name: c.p_value for c in full.columns},
    }
    power = []
    for factor in (1.1, 1.2, 1.3, 1.5):
        shifted = inject_drift(test, seed, {"Income": factor, "Amount": factor}, None)
        for rows in (500, 1000):
            result = resample_verdicts(
                shifted, model, reference, params, rows, max(rounds // 5, 20), seed, False
            )
            power.append(
                {
                    "factor": factor,
                    "rows": rows,
                    "detection_rate": {
                        column: result["columns_flagged"].get(column, 0) / result["rounds"]
                        for column in ("Income", "Amount")
                    },
                    "warning_rate": {
                        column: result["columns_warned"].get(column, 0) / result["rounds"]
                        for column in ("Income", "Amount")
                    },
                    "psi_full_test_split": {
                        c.name: c.psi
                        for c in judge(shifted, model, reference, params).columns
                        if c.name in ("Income", "Amount")
                    },
                }
            )
    return {
        "machine": f"{platform.machine()} {platform.python_version()}",
        "thresholds": params.drift.model_dump(),
        "false_alarms": false_alarms,
        "injected_drift": {
            "change": "Income x1.5, Amount x1.5, half of Home=owner set to rent (test split)",
            **injected,
        },
        "detection_power": power,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/drift.json"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits

    # One thread: OpenMP spinning on a busy 2-core machine makes scoring 10x slower.
    with threadpool_limits(1):
        result = run(load_params(args.params), args.rounds, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for row in result["false_alarms"]:
        print(
            f"false alarms, {row['source']}, {row['rows']} rows x {row['rounds']}: verdict drift "
            f"{row['drift_rate']:.2%}, warning {row['warning_rate']:.2%}; any column, ignoring "
            f"min_rows: drift {row['column_drift_rate']:.2%}, "
            f"warning+ {row['column_warning_or_drift_rate']:.2%}"
        )
    print(f"injected drift: {result['injected_drift']['psi']}")
    print(f"-> {args.out} in {result['seconds']}s")


if __name__ == "__main__":
    main()
