"""Evaluate stage: test-set metrics, AUC interval and per-segment AUC, plots as data and PNG."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from modelops.config import Params
from modelops.pipeline.data import coerce_features, labels, read_split
from modelops.pipeline.stats import bootstrap_auc_interval


def load_local_model(model_dir: str | Path) -> Any:
    """The sklearn pipeline from an MLflow model folder (models/model or an export)."""
    import mlflow.sklearn

    model_dir = Path(model_dir)
    if not (model_dir / "MLmodel").is_file():
        raise FileNotFoundError(f"{model_dir}: no MLmodel file; run `dvc repro train` first")
    return mlflow.sklearn.load_model(str(model_dir))


def score(model: Any, frame: pd.DataFrame, params: Params) -> np.ndarray:
    """Probability of the positive class for each row of a raw frame."""
    return np.asarray(model.predict_proba(coerce_features(frame, params.data))[:, 1])


def metrics(y: np.ndarray, scores: np.ndarray, params: Params) -> dict[str, float]:
    low, high = bootstrap_auc_interval(
        y,
        scores,
        params.evaluate.bootstrap_rounds,
        params.evaluate.confidence_level,
        params.evaluate.seed,
    )
    return {
        "roc_auc": float(roc_auc_score(y, scores)),
        "roc_auc_ci_low": low,
        "roc_auc_ci_high": high,
        "pr_auc": float(average_precision_score(y, scores)),
        "log_loss": float(log_loss(y, scores, labels=[0, 1])),
        "brier": float(brier_score_loss(y, scores)),
        "test_rows": float(len(y)),
        "positive_rate": float(np.mean(y)),
    }


def segment_auc(
    frame: pd.DataFrame, y: np.ndarray, scores: np.ndarray, column: str | None
) -> dict[str, dict[str, Any]]:
    """AUC per value of the segment column; None where a segment holds one class only."""
    if not column:
        return {}
    groups = frame[column].astype("object").fillna("__missing__").astype(str).to_numpy()
    out: dict[str, dict[str, Any]] = {}
    for value in sorted(set(groups)):
        mask = groups == value
        both = 0 < y[mask].sum() < mask.sum()
        out[value] = {
            "rows": int(mask.sum()),
            "positives": int(y[mask].sum()),
            "roc_auc": float(roc_auc_score(y[mask], scores[mask])) if both else None,
        }
    return out


def curves(y: np.ndarray, scores: np.ndarray) -> dict[str, pd.DataFrame]:
    """ROC, precision-recall and calibration curves as tables (DVC plots read these)."""
    fpr, tpr, _ = roc_curve(y, scores)
    precision, recall, _ = precision_recall_curve(y, scores)
    observed, predicted = calibration_curve(y, scores, n_bins=10, strategy="quantile")
    return {
        "roc": pd.DataFrame({"fpr": fpr, "tpr": tpr}),
        "precision_recall": pd.DataFrame({"recall": recall, "precision": precision}),
        "calibration": pd.DataFrame({"predicted": predicted, "observed": observed}),
    }


def render_plots(tables: dict[str, pd.DataFrame], summary: dict[str, float], out_dir: Path) -> None:
    """PNG images of the three curves, for people and for the MLflow run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    specs = {
        "roc": (
            "fpr",
            "tpr",
            "False positive rate",
            "True positive rate",
            f"ROC (AUC {summary['roc_auc']:.3f})",
        ),
        "precision_recall": (
            "recall",
            "precision",
            "Recall",
            "Precision",
            f"Precision-recall (AP {summary['pr_auc']:.3f})",
        ),
        "calibration": (
            "predicted",
            "observed",
            "Mean predicted score",
            "Observed positive rate",
            f"Calibration (Brier {summary['brier']:.3f})",
        ),
    }
    for name, (x, y, xlabel, ylabel, title) in specs.items():
        figure, axes = plt.subplots(figsize=(5, 4.5), dpi=100)
        axes.plot(tables[name][x], tables[name][y], marker="." if name == "calibration" else None)
        if name != "precision_recall":
            axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
        axes.set(xlabel=xlabel, ylabel=ylabel, title=title, xlim=(0, 1), ylim=(0, 1.02))
        figure.tight_layout()
        figure.savefig(out_dir / f"{name}.png")
        plt.close(figure)


def run_evaluate(
    params: Params,
    model_dir: Path,
    test_path: Path,
    metrics_file: Path,
    plots_dir: Path,
    predictions_file: Path,
) -> dict[str, Any]:
    """Score the test split, write metrics/plots/predictions; returns the metrics dict."""
    model = load_local_model(model_dir)
    test = read_split(test_path)
    y, scores = labels(test, params.data), score(model, test, params)
    summary = metrics(y, scores, params)
    result = {**summary, "segments": segment_auc(test, y, scores, params.data.segment_column)}

    for path in (metrics_file.parent, plots_dir, predictions_file.parent):
        path.mkdir(parents=True, exist_ok=True)
    metrics_file.write_text(json.dumps(result, indent=2) + "\n")
    tables = curves(y, scores)
    for name, table in tables.items():
        table.round(6).to_csv(plots_dir / f"{name}.csv", index=False)
    render_plots(tables, summary, plots_dir)
    pd.DataFrame({"label": y, "score": scores}).to_parquet(predictions_file, index=False)
    return result
