"""The label-aware guard: is the version each environment serves still as good as at its gate?

Prediction logs joined with labels that arrived later (monitor/labels.py) give, for every
environment, the served version's own scores and the outcomes. For the version an
environment serves (its GitOps file says which; the stable track only, a canary is judged by
its own analysis), the guard computes ROC AUC with DeLong's confidence interval and checks
two lines: the floor `gate.min_auc`, and the version's gate AUC (tag `gate_auc` in MLflow)
minus `monitor.max_auc_drop`. A check fails only when the whole interval is under its line,
passes when the whole interval is above, and is inconclusive otherwise, so a small sample
never raises an alarm (too few labels at all is inconclusive too). A failure asks for
`monitor.on_auc_drop` (rollback | retrain | alert); monitor.yml opens one issue per
environment and version and acts (.github/scripts/github-api.js).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from modelops.config import Params
from modelops.monitor.labels import LABEL, Feedback

Verdict = Literal["ok", "inconclusive", "failed"]
_RANK = {"ok": 0, "inconclusive": 1, "failed": 2}
EXIT_CODES = {"ok": 0, "failed": 3, "inconclusive": 4}
JSON_FILE, MARKDOWN_FILE = "guard.json", "guard.md"
ISSUE_LABEL = "model-auc"


@dataclass
class Check:
    """One line the AUC must stay above, and where the interval sits against it."""

    name: str
    line: float
    result: Verdict


@dataclass
class EnvironmentResult:
    """The served version of one environment, judged on its labeled predictions."""

    environment: str
    version: str
    served_from: str  # "gitops" (the environment's desired state) or "logs" (latest logged)
    rows: int
    positives: int
    verdict: Verdict
    auc: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    gate_auc: float | None = None
    checks: list[Check] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    action: str | None = None
    other_versions: dict[str, int] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        """The environment as a file-name and HTML-comment safe word."""
        return re.sub(r"[^A-Za-z0-9_.-]", "_", self.environment)

    @property
    def marker(self) -> str:
        version = re.sub(r"[^A-Za-z0-9_.-]", "_", self.version)
        return f"<!-- modelops-auc-guard env={self.slug} version={version} -->"

    @property
    def title(self) -> str:
        then = f" (gate {self.gate_auc:.3f})" if self.gate_auc is not None else ""
        auc = f"{self.auc:.3f}" if self.auc is not None else "?"
        return f"AUC drop in {self.environment}: version {self.version} at {auc}{then}"


@dataclass
class GuardReport:
    verdict: Verdict
    environments: list[EnvironmentResult]
    feedback: dict[str, Any]
    confidence_level: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self, issue_dir: str = "") -> dict[str, Any]:
        """The report; `actions` lists each failure with its issue body file."""
        data = asdict(self)
        data["actions"] = [
            {
                "environment": e.environment,
                "version": e.version,
                "action": e.action,
                "title": e.title,
                "marker": e.marker,
                "issue_file": f"{issue_dir}/issue-{e.slug}.md" if issue_dir else "",
            }
            for e in self.environments
            if e.verdict == "failed"
        ]
        return data


def _judge_line(name: str, line: float, low: float, high: float) -> Check:
    result: Verdict = "failed" if high < line else "ok" if low >= line else "inconclusive"
    return Check(name, round(line, 6), result)


def judge_environment(
    rows: pd.DataFrame,
    environment: str,
    version: str,
    served_from: str,
    gate_auc: float | None,
    params: Params,
) -> EnvironmentResult:
    """AUC of one environment's served version with its interval, against both lines."""
    from modelops.pipeline.data import labels
    from modelops.pipeline.stats import delong_interval

    y = labels(rows.rename(columns={LABEL: params.data.target}), params.data)
    scores = pd.to_numeric(rows["score"], errors="coerce").to_numpy(dtype=float)
    y, scores = y[~np.isnan(scores)], scores[~np.isnan(scores)]
    positives, monitor = int(y.sum()), params.monitor
    result = EnvironmentResult(
        environment, version, served_from, len(y), positives, "inconclusive", gate_auc=gate_auc
    )
    fewest = min(positives, len(y) - positives)
    if len(y) < monitor.min_labeled_rows or fewest < monitor.min_class_rows:
        result.reasons.append(
            f"{len(y)} labeled rows ({positives} positive): too few to judge; the guard needs "
            f"monitor.min_labeled_rows={monitor.min_labeled_rows} and "
            f"monitor.min_class_rows={monitor.min_class_rows} of each class"
        )
        return result
    level = params.evaluate.confidence_level
    auc, low, high = delong_interval(y, scores, level)
    result.auc, result.ci_low, result.ci_high = round(auc, 6), round(low, 6), round(high, 6)
    result.checks.append(_judge_line("gate.min_auc", params.gate.min_auc, low, high))
    if gate_auc is not None:
        line = gate_auc - monitor.max_auc_drop
        result.checks.append(_judge_line("gate AUC - monitor.max_auc_drop", line, low, high))
    else:
        result.reasons.append(
            f"version {version} has no gate_auc tag in the registry: only the floor is checked"
        )
    span = f"AUC {auc:.4f} [{low:.4f}, {high:.4f}] ({level:.0%} DeLong interval)"
    for check in result.checks:
        where = {"failed": "wholly under", "ok": "wholly above", "inconclusive": "across"}
        result.reasons.append(f"{span} is {where[check.result]} {check.name} = {check.line:.4f}")
    results = [c.result for c in result.checks]
    result.verdict = max(results, key=lambda r: _RANK[r])
    if result.verdict == "failed":
        result.action = monitor.on_auc_drop
    return result


def judge(
    feedback: Feedback,
    served: dict[str, str],
    gate_auc: Callable[[str], float | None],
    params: Params,
    environment: str | None = None,
) -> GuardReport:
    """Judge every environment that has labeled predictions (or only `environment`).

    `served` maps an environment to the version it serves (from its GitOps file); an
    environment missing there is judged on the version it logged last. `gate_auc(version)`
    reads the version's gate AUC from the registry.
    """
    frame, notes = feedback.frame, [feedback.summary()]
    envs = sorted(set(frame["environment"].dropna().astype(str))) if len(frame) else []
    if environment is not None:
        envs = [e for e in envs if e == environment]
    unlabeled = sorted(set(served) - set(envs))
    if unlabeled and environment is None:
        notes.append(f"no labeled predictions for {', '.join(unlabeled)}: not judged")
    results = []
    for env in envs:
        rows = frame[frame["environment"].astype(str) == env]
        stable = rows[rows["track"].fillna("").astype(str) != "canary"]
        versions = stable["model_version"].astype(str)
        if stable.empty:
            notes.append(f"{env}: labeled predictions of the canary track only: not judged")
            continue
        if env in served:
            version, source = served[env], "gitops"
        else:
            version, source = str(stable.sort_values("timestamp")["model_version"].iloc[-1]), "logs"
            notes.append(f"{env}: no GitOps state; judged version {version}, the latest logged")
        mine = stable[versions == version]
        result = judge_environment(mine, env, version, source, gate_auc(version), params)
        if result.action == "rollback" and source != "gitops":
            result.action = "alert"
            result.reasons.append(f"{env} has no GitOps state here: it cannot be rolled back")
        result.other_versions = {
            v: int(n) for v, n in versions[versions != version].value_counts().items()
        }
        results.append(result)
    verdict: Verdict = max((r.verdict for r in results), key=lambda v: _RANK[v], default="ok")
    if not results:
        verdict = "inconclusive"
        notes.append("no labeled prediction of any environment: nothing judged")
    counts = {  # guard.json's names, kept as they were
        "labels": feedback.labels,
        "matched": feedback.matched,
        "unmatched": feedback.unmatched_labels,
        "duplicates": feedback.duplicate_labels,
        "conflicting": feedback.conflicting_labels,
        "blank": feedback.missing_labels,
    }
    return GuardReport(verdict, results, counts, params.evaluate.confidence_level, notes)


def to_markdown(report: GuardReport) -> str:
    """The job summary: one table row per environment, then the reasons and notes."""
    lines = [
        f"# AUC guard: {report.verdict}",
        "",
        "| environment | version | labeled rows | positives | ROC AUC | interval | gate AUC "
        "| verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in report.environments:
        auc = f"{e.auc:.4f}" if e.auc is not None else "-"
        span = f"[{e.ci_low:.4f}, {e.ci_high:.4f}]" if e.ci_low is not None else "-"
        gate = f"{e.gate_auc:.4f}" if e.gate_auc is not None else "-"
        verdict = e.verdict.upper() if e.verdict == "failed" else e.verdict
        lines.append(
            f"| {e.environment} | {e.version} | {e.rows} | {e.positives} | {auc} | {span} "
            f"| {gate} | {verdict} |"
        )
    lines.append("")
    for e in report.environments:
        for reason in e.reasons:
            lines.append(f"- {e.environment}: {reason}")
        if e.other_versions:
            others = ", ".join(f"version {v}: {n}" for v, n in sorted(e.other_versions.items()))
            lines.append(f"- {e.environment}: labeled rows of versions not served now ({others})")
        if e.action:
            lines.append(f"- {e.environment}: monitor.on_auc_drop = `{e.action}`")
    lines.extend(f"- {note}" for note in report.notes)
    return "\n".join(lines).rstrip() + "\n"


_ACTIONS = {
    "rollback": "`rollback.yml` was dispatched for this environment: the registry's champion "
    "goes back to the previous version and its image serves at 100 %.",
    "retrain": "`train.yml` was dispatched to retrain on `main`'s data (with the labeled "
    "feedback, once `modelops feedback` wrote it to the source).",
    "alert": "No action was taken (`monitor.on_auc_drop: alert`): decide whether to roll "
    "back (`rollback.yml`) or retrain.",
}


def issue_body(result: EnvironmentResult, report: GuardReport, run_url: str | None) -> str:
    run = f"[monitor run]({run_url})" if run_url else "the monitor run"
    lines = [
        result.marker,
        f"**{result.title}**: the served version's ROC AUC on {result.rows} predictions "
        f"whose labels arrived later is confidently under its line.",
        "",
        *(f"- {reason}" for reason in result.reasons),
        "",
        _ACTIONS[result.action or "alert"],
        "",
        f"Labels: {report.feedback['labels']} read, {report.feedback['matched']} matched a "
        f"logged prediction, {report.feedback['unmatched']} matched none, "
        f"{report.feedback['duplicates']} duplicates. The report is in the `auc-guard` "
        f"artifact of {run}. A later failure of the same version comments here.",
    ]
    return "\n".join(lines) + "\n"


def write_guard(
    report: GuardReport, out_dir: Path, issue_dir: Path, run_url: str | None = None
) -> Path:
    """guard.json and guard.md in out_dir, one issue body per failed environment in
    issue_dir (guard.json names each by its path as given)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    issue_dir.mkdir(parents=True, exist_ok=True)
    for stale in issue_dir.glob("issue-*.md"):
        stale.unlink()
    for result in report.environments:
        if result.verdict == "failed":
            body = issue_body(result, report, run_url)
            (issue_dir / f"issue-{result.slug}.md").write_text(body, encoding="utf-8")
    (out_dir / MARKDOWN_FILE).write_text(to_markdown(report), encoding="utf-8")
    path = out_dir / JSON_FILE
    data = report.to_dict(issue_dir.as_posix())
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path
