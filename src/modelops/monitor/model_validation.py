"""Concept drift with delayed labels: the model's AUC on fresh labeled rows, against the gate.

Data drift says the inputs moved; only labels say whether the model still ranks cases well.
When the outcomes of past applications arrive, `modelops validate-model` scores those rows with the
production model and fails when its ROC AUC is under `gate.min_auc`, the same floor a new
model must pass to be registered.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from modelops.config import Params
from modelops.errors import DataError
from modelops.registry.client import RegistryClient


@dataclass
class ValidationResult:
    """AUC of one model on one labeled data set, and whether it clears the floor."""

    model: str
    data: str
    rows: int
    positives: int
    roc_auc: float
    roc_auc_ci_low: float
    roc_auc_ci_high: float
    min_auc: float
    passed: bool
    registry: dict[str, Any] = field(default_factory=dict)
    gate_auc: float | None = None
    segments: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        state = "passed" if self.passed else "FAILED"
        version = f" (version {self.registry['version']})" if self.registry else ""
        then = f"; AUC at the gate was {self.gate_auc:.4f}" if self.gate_auc is not None else ""
        return (
            f"validate {state}: {self.model}{version} ROC AUC {self.roc_auc:.4f} "
            f"[{self.roc_auc_ci_low:.4f}, {self.roc_auc_ci_high:.4f}] on {self.rows} labeled rows "
            f"({self.positives} positive), floor gate.min_auc={self.min_auc}{then}"
        )


def labeled_rows(path: Path, params: Params) -> tuple[Any, np.ndarray, list[str]]:
    """The rows that have a label, their 0/1 labels, and notes on what was left out."""
    from modelops.monitor.drift import check_columns
    from modelops.monitor.inputs import read_table
    from modelops.pipeline.data import labels

    frame = read_table(path)
    target = params.data.target
    if target not in frame.columns:
        raise DataError(
            f"{path}: no label column {target!r} (data.target in params.yaml); validate needs "
            "rows whose outcome is known"
        )
    check_columns(frame, params.data, str(path))
    notes = []
    unlabeled = int(frame[target].isna().sum())
    if unlabeled:
        frame = frame[frame[target].notna()].reset_index(drop=True)
        notes.append(f"{unlabeled} rows without a label yet were left out")
    y = labels(frame, params.data)
    if len(y) == 0 or y.min() == y.max():
        raise DataError(
            f"{path}: AUC needs both outcomes, but the {len(y)} labeled rows hold only "
            f"{'positive' if len(y) and y[0] else 'negative'} ones ({target} == "
            f"{params.data.positive_class!r} is positive); wait for more labels"
        )
    return frame, y, notes


def validate_model(
    model: str, data: Path, params: Params, registry: RegistryClient | None = None
) -> ValidationResult:
    """Score the labeled rows with the model (folder, or registry URI read through
    `registry`) and judge its AUC."""
    from modelops.pipeline.evaluate import load_local_model, score, segment_auc
    from modelops.pipeline.stats import bootstrap_auc_interval
    from modelops.registry.model_source import is_registry_uri, local_model, registry_details

    frame, y, notes = labeled_rows(data, params)
    with local_model(model, registry) as model_dir:
        scores = score(load_local_model(model_dir), frame, params)
    details = registry_details(model, registry) if registry and is_registry_uri(model) else {}
    gate_auc = details.get("tags", {}).get("gate_auc")
    auc = float(roc_auc_score(y, scores))
    low, high = bootstrap_auc_interval(
        y,
        scores,
        params.evaluate.bootstrap_rounds,
        params.evaluate.confidence_level,
        params.evaluate.seed,
    )
    return ValidationResult(
        model=model,
        data=str(data),
        rows=len(y),
        positives=int(y.sum()),
        roc_auc=round(auc, 6),
        roc_auc_ci_low=round(low, 6),
        roc_auc_ci_high=round(high, 6),
        min_auc=params.gate.min_auc,
        passed=auc >= params.gate.min_auc,
        registry=details,
        gate_auc=float(gate_auc) if gate_auc is not None else None,
        segments=segment_auc(frame, y, scores, params.data.segment_column),
        notes=notes,
    )


def write_validation(result: ValidationResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(result), indent=2) + "\n")
