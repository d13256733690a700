"""Gate stage: an absolute AUC floor, and no significant loss against the champion."""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelops.config import GateParams
from modelops.pipeline.stats import delong_test
from modelops.registry.client import CHAMPION, RegistryClient


@dataclass
class Comparison:
    """Challenger vs champion on the same test cases (DeLong, paired)."""

    champion_version: str
    champion_auc: float
    difference: float  # challenger - champion
    ci_low: float
    ci_high: float
    p_value: float


@dataclass
class GateReport:
    passed: bool
    challenger_run_id: str
    challenger_auc: float
    thresholds: dict[str, float]
    reasons: list[str] = field(default_factory=list)
    champion: Comparison | None = None
    champion_note: str = "no champion registered yet: absolute threshold only"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_markdown(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        lines = [
            f"## Model gate: {verdict}",
            "",
            "| model | ROC AUC |",
            "|---|---|",
            f"| challenger (run `{self.challenger_run_id[:12]}`) | {self.challenger_auc:.4f} |",
        ]
        if self.champion:
            c = self.champion
            lines += [
                f"| champion (version {c.champion_version}) | {c.champion_auc:.4f} |",
                "",
                f"Difference (challenger - champion): **{c.difference:+.4f}** "
                f"(95% CI {c.ci_low:+.4f} to {c.ci_high:+.4f}), paired DeLong p = "
                f"{c.p_value:.4g}",
            ]
        else:
            lines += ["", self.champion_note]
        t = self.thresholds
        lines += [
            "",
            f"Thresholds: min AUC {t['min_auc']}, max AUC drop {t['max_auc_drop']} "
            f"significant at alpha {t['alpha']}.",
        ]
        lines += ["", *(f"- {reason}" for reason in self.reasons)] if self.reasons else []
        return "\n".join(lines) + "\n"


def decide(
    y: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray | None,
    champion_version: str | None,
    run_id: str,
    gate: GateParams,
    champion_note: str | None = None,
) -> GateReport:
    """Apply the gate rules to scores on the same test set."""
    from sklearn.metrics import roc_auc_score

    auc = float(roc_auc_score(y, challenger))
    report = GateReport(
        passed=True, challenger_run_id=run_id, challenger_auc=auc, thresholds=gate.model_dump()
    )
    if champion_note:
        report.champion_note = champion_note
    if auc < gate.min_auc:
        report.passed = False
        report.reasons.append(f"challenger AUC {auc:.4f} is below gate.min_auc {gate.min_auc}")
    if champion is not None and champion_version is not None:
        test = delong_test(y, challenger, champion)
        report.champion = Comparison(
            champion_version, test.auc_b, test.difference, test.ci_low, test.ci_high, test.p_value
        )
        drop = -test.difference
        if drop > gate.max_auc_drop and test.p_value < gate.alpha:
            report.passed = False
            report.reasons.append(
                f"challenger AUC is {drop:.4f} below champion v{champion_version} "
                f"(> gate.max_auc_drop {gate.max_auc_drop}) and the drop is significant "
                f"(DeLong p = {test.p_value:.3g} < gate.alpha {gate.alpha})"
            )
    if report.passed:
        report.reasons.append("all gate checks passed")
    return report


def write_report(report: GateReport, json_path: Path, markdown_path: Path) -> None:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    markdown_path.write_text(report.to_markdown())


def read_report(json_path: Path) -> dict[str, Any]:
    if not json_path.is_file():
        raise FileNotFoundError(f"{json_path}: no gate report; run `dvc repro` (stage gate) first")
    data: dict[str, Any] = json.loads(json_path.read_text())
    return data


def champion_scores(
    registry: RegistryClient, model_name: str, test: pd.DataFrame, features: list[str]
) -> tuple[np.ndarray | None, str | None, str | None]:
    """Score the test split with the registered champion: (scores, version, note)."""
    from modelops.pipeline.evaluate import load_local_model

    ref = registry.version_by_alias(model_name, CHAMPION)
    if ref is None:
        return None, None, None
    with tempfile.TemporaryDirectory(prefix="modelops-champion-") as tmp:
        model = load_local_model(registry.download(ref.uri, Path(tmp)))
    try:
        scores = np.asarray(model.predict_proba(test)[:, 1])
    except (KeyError, ValueError) as error:
        note = (
            f"champion v{ref.version} cannot score this test set ({error}); the feature "
            f"set changed ({features}), so only the absolute threshold applies"
        )
        return None, None, note
    return scores, ref.version, None
