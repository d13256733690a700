"""The pull-request report: metrics and params diff against a base revision, gate, curves.

`collect` asks DVC and git for the facts (so it runs the same in CI and on a laptop);
`render` turns them into the markdown body of the PR comment. The body starts with
`MARKER`, a hidden HTML comment by which the workflow finds its previous comment and
updates it in place instead of posting a new one on every push.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from modelops.errors import Refused

MARKER = "<!-- modelops-report -->"

# Headline metrics of reports/metrics.json in display order; True = higher is better.
HEADLINE = {
    "roc_auc": True,
    "roc_auc_ci_low": True,
    "roc_auc_ci_high": True,
    "pr_auc": True,
    "log_loss": False,
    "brier": False,
    "positive_rate": None,
    "test_rows": None,
}
FPR_POINTS = (0.01, 0.05, 0.1, 0.2)
RECALL_POINTS = (0.5, 0.7, 0.9)
CHART_GRID = tuple(round(i / 10, 1) for i in range(11))


@dataclass(frozen=True)
class Change:
    """One metric or parameter at the base and in the workspace (None: absent there)."""

    key: str
    old: Any
    new: Any


@dataclass(frozen=True)
class Verdict:
    """passed | failed (the gate rejected the model) | incomplete (a stage did not finish)."""

    state: str
    headline: str
    detail: str = ""


@dataclass
class Curve:
    """Points of one plot table (x and y columns of reports/plots/<name>.csv)."""

    x: list[float]
    y: list[float]


@dataclass
class ReportData:
    """Everything the comment shows, gathered by `collect`."""

    base_label: str
    base_commit: str
    head_commit: str
    verdict: Verdict
    metrics: dict[str, Change]
    params: list[Change]
    gate_markdown: str | None
    curves: dict[str, tuple[Curve | None, Curve | None]] = field(default_factory=dict)
    run_url: str | None = None


@dataclass(frozen=True)
class ReportPaths:
    """Where the pipeline writes its outputs (the paths of dvc.yaml)."""

    metrics: Path = Path("reports/metrics.json")
    gate_report: Path = Path("reports/gate.json")
    gate_summary: Path = Path("reports/gate.md")
    plots_dir: Path = Path("reports/plots")
    run_file: Path = Path("models/run.json")


def _run(args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as error:
        raise Refused(f"`{args[0]}` is not installed or not on PATH; run `make setup`") from error


def dvc_json(args: Sequence[str], cwd: Path) -> Any:
    """Run `dvc <args> --json` and parse its output; a failure names the command and why."""
    done = _run(["dvc", *args, "--json"], cwd)
    if done.returncode != 0:
        reason = (done.stderr.strip() or done.stdout.strip()).splitlines()
        raise Refused(
            f"`dvc {' '.join(args)}` failed: {reason[-1] if reason else 'no output'}; "
            "is this a DVC project with the base revision fetched (fetch-depth: 0)?"
        )
    return json.loads(done.stdout or "{}")


def resolve_commit(ref: str, cwd: Path) -> str:
    """Full commit id of a git revision, or a clear refusal when the clone lacks it."""
    done = _run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd)
    if done.returncode != 0:
        raise Refused(
            f"git revision '{ref}' is not in this clone; fetch it (actions/checkout with "
            "fetch-depth: 0, or `git fetch origin main`) or pass another --base-ref"
        )
    return done.stdout.strip()


def git_show(commit: str, path: Path, cwd: Path) -> str | None:
    """A file's text at a commit, or None when it did not exist there."""
    done = _run(["git", "show", f"{commit}:{path.as_posix()}"], cwd)
    return done.stdout if done.returncode == 0 else None


def metrics_diff(base: str, metrics_file: Path, cwd: Path) -> dict[str, Change]:
    """Every metric of one metrics file, base vs workspace (`dvc metrics diff --all`)."""
    diff = dvc_json(["metrics", "diff", "--all", base, "--targets", str(metrics_file)], cwd)
    entries: Mapping[str, Any] = diff.get(metrics_file.as_posix(), {})
    return {key: Change(key, v.get("old"), v.get("new")) for key, v in entries.items()}


def params_diff(base: str, cwd: Path) -> list[Change]:
    """Parameters that differ between base and workspace (`dvc params diff`)."""
    diff = dvc_json(["params", "diff", base], cwd)
    return [
        Change(key, value.get("old"), value.get("new"))
        for entries in diff.values()
        for key, value in sorted(entries.items())
    ]


def stage_order(cwd: Path) -> list[str]:
    """Stage names in the order dvc.yaml lists them (the pipeline's order)."""
    spec = yaml.safe_load((cwd / "dvc.yaml").read_text()) or {}
    return list(spec.get("stages", {}))


def judge(stale: Sequence[str], gate: Mapping[str, Any] | None, run_id: str | None) -> Verdict:
    """What the run amounted to, from the out-of-date stages and the gate report.

    `stale` lists the stages `dvc status` reports as not reproduced, in pipeline order.
    A gate that rejects the model raises, so DVC does not record it: only `gate` is stale
    and reports/gate.json judges the run that models/run.json holds.
    """
    if not stale and gate is not None:
        if gate.get("passed"):
            return Verdict("passed", "gate PASSED", _auc_line(gate))
        return Verdict("failed", "gate FAILED", _reasons(gate))
    fresh_gate = gate is not None and run_id is not None and gate.get("challenger_run_id") == run_id
    if list(stale) == ["gate"] and fresh_gate and gate is not None and not gate.get("passed"):
        return Verdict("failed", "gate FAILED", _reasons(gate))
    first = stale[0] if stale else "gate"
    return Verdict(
        "incomplete",
        f"pipeline stopped at stage `{first}`",
        f"Stage `{first}` did not finish (see the job log); figures below that the run did "
        "not reach are the committed ones.",
    )


def _auc_line(gate: Mapping[str, Any]) -> str:
    return f"challenger ROC AUC {gate.get('challenger_auc', float('nan')):.4f}"


def _reasons(gate: Mapping[str, Any]) -> str:
    return "; ".join(gate.get("reasons", [])) or "the gate did not pass"


def read_curve(text: str | None) -> Curve | None:
    """The two columns of a plot table (x first), or None when there is no table."""
    if not text:
        return None
    rows = list(csv.reader(io.StringIO(text)))
    if len(rows) < 2 or len(rows[0]) < 2:
        return None
    points = [(float(r[0]), float(r[1])) for r in rows[1:] if len(r) >= 2]
    return Curve([p[0] for p in points], [p[1] for p in points])


def tpr_at(curve: Curve, fpr: float) -> float:
    """Best true-positive rate with a false-positive rate at most `fpr` (ROC table)."""
    return max((y for x, y in zip(curve.x, curve.y, strict=True) if x <= fpr + 1e-12), default=0.0)


def precision_at(curve: Curve, recall: float) -> float:
    """Best precision with a recall at least `recall` (interpolated precision, PR table)."""
    return max(
        (y for x, y in zip(curve.x, curve.y, strict=True) if x >= recall - 1e-12), default=0.0
    )


def collect(
    root: Path,
    base_ref: str,
    *,
    base_label: str | None = None,
    paths: ReportPaths | None = None,
    run_url: str | None = None,
) -> ReportData:
    """Gather the report for the workspace at `root` against the git revision `base_ref`."""
    paths = paths or ReportPaths()
    base = resolve_commit(base_ref, root)
    head = resolve_commit("HEAD", root)
    status = dvc_json(["status"], root)
    stale = [name for name in stage_order(root) if name in status]
    gate = _read_json(root / paths.gate_report)
    run = _read_json(root / paths.run_file)
    verdict = judge(stale, gate, run.get("run_id") if run else None)
    curves = {}
    for name in ("roc", "precision_recall", "calibration"):
        table = paths.plots_dir / f"{name}.csv"
        current = root / table
        curves[name] = (
            read_curve(git_show(base, table, root)),
            read_curve(current.read_text() if current.is_file() else None),
        )
    summary = root / paths.gate_summary
    return ReportData(
        base_label=base_label or base_ref,
        base_commit=base,
        head_commit=head,
        verdict=verdict,
        metrics=metrics_diff(base, paths.metrics, root),
        params=params_diff(base, root),
        gate_markdown=summary.read_text() if summary.is_file() else None,
        curves=curves,
        run_url=run_url,
    )


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() and abs(value) >= 100 else f"{value:.4f}"
    if isinstance(value, (list, dict)):
        return f"`{json.dumps(value)}`"
    return str(value)


def _delta(change: Change, higher_is_better: bool | None = None) -> str:
    old, new = change.old, change.new
    if not isinstance(old, (int, float)) or not isinstance(new, (int, float)):
        return "—" if old is None or new is None else ""
    diff = float(new) - float(old)
    if abs(diff) < 5e-5:
        return "0"
    arrow = ""
    if higher_is_better is not None:
        arrow = " ✅" if (diff > 0) == higher_is_better else " ⚠️"
    return f"{diff:+.4f}{arrow}"


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(report: ReportData) -> str:
    """The markdown comment body, starting with MARKER."""
    icon = {"passed": "✅", "failed": "❌"}.get(report.verdict.state, "⚠️")
    lines = [
        MARKER,
        f"## {icon} Model report: {report.verdict.headline}",
        "",
        f"`{report.head_commit[:8]}` compared with **{_escape(report.base_label)}** "
        f"(`{report.base_commit[:8]}`). {report.verdict.detail}".rstrip(),
        "",
        *_metrics_section(report),
        *_params_section(report),
        *_gate_section(report),
        *_curves_section(report),
    ]
    if report.run_url:
        lines += [
            "",
            f"Plots (PNG), reports and the full log: [CI run]({report.run_url}), "
            "artifact `model-report`.",
        ]
    lines += ["", "<sub>Updated in place on every push by the `ci` workflow.</sub>"]
    return "\n".join(lines) + "\n"


def _metrics_section(report: ReportData) -> list[str]:
    lines = ["### Metrics", "", f"| metric | {report.base_label} | this PR | change |"]
    lines.append("|---|---:|---:|---:|")
    for key, better in HEADLINE.items():
        if key in report.metrics:
            c = report.metrics[key]
            lines.append(f"| {key} | {_fmt(c.old)} | {_fmt(c.new)} | {_delta(c, better)} |")
    segments: dict[str, dict[str, Change]] = {}
    for key, change in report.metrics.items():
        parts = key.split(".")
        if len(parts) == 3 and parts[0] == "segments":
            segments.setdefault(parts[1], {})[parts[2]] = change
    if segments:
        lines += [
            "",
            "<details><summary>ROC AUC per segment</summary>",
            "",
            f"| segment | rows | {report.base_label} | this PR | change |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, values in sorted(segments.items()):
            auc = values.get("roc_auc", Change("roc_auc", None, None))
            rows = values.get("rows", Change("rows", None, None))
            lines.append(
                f"| {_escape(name)} | {_fmt(rows.new)} | {_fmt(auc.old)} | {_fmt(auc.new)} "
                f"| {_delta(auc, True)} |"
            )
        lines += ["", "</details>"]
    if not report.metrics:
        lines.append("| (no metrics: the pipeline did not write reports/metrics.json) | | | |")
    return [*lines, ""]


def _params_section(report: ReportData) -> list[str]:
    if not report.params:
        return ["### Parameters", "", f"No parameter differs from {report.base_label}.", ""]
    lines = [
        "### Parameters",
        "",
        f"| parameter | {report.base_label} | this PR |",
        "|---|---|---|",
    ]
    for change in report.params:
        lines.append(f"| `{change.key}` | {_fmt(change.old)} | {_fmt(change.new)} |")
    return [*lines, ""]


def _gate_section(report: ReportData) -> list[str]:
    if report.gate_markdown is None:
        return ["### Gate", "", "No gate report was written.", ""]
    body = report.gate_markdown.strip().splitlines()
    if body and body[0].startswith("## "):  # the verdict is already the comment's title
        body = body[1:]
    while body and not body[0].strip():
        body = body[1:]
    title = "### Gate" + (
        " (committed report: the run did not reach the gate)"
        if (report.verdict.state == "incomplete")
        else ""
    )
    return [title, "", *body, ""]


def _curves_section(report: ReportData) -> list[str]:
    roc_base, roc_new = report.curves.get("roc", (None, None))
    pr_base, pr_new = report.curves.get("precision_recall", (None, None))
    lines: list[str] = []
    if roc_new or pr_new:
        lines += [
            "### Operating points",
            "",
            f"| point | {report.base_label} | this PR |",
            "|---|---:|---:|",
        ]
        for fpr in FPR_POINTS:
            old = tpr_at(roc_base, fpr) if roc_base else None
            new = tpr_at(roc_new, fpr) if roc_new else None
            lines.append(f"| recall at FPR ≤ {fpr:g} | {_fmt(old)} | {_fmt(new)} |")
        for recall in RECALL_POINTS:
            old = precision_at(pr_base, recall) if pr_base else None
            new = precision_at(pr_new, recall) if pr_new else None
            lines.append(f"| precision at recall ≥ {recall:g} | {_fmt(old)} | {_fmt(new)} |")
        lines.append("")
    lines += _chart(
        "ROC curve",
        "false positive rate",
        "true positive rate",
        roc_base,
        roc_new,
        report.base_label,
        tpr_at,
    )
    lines += _chart(
        "Precision-recall curve",
        "recall",
        "precision",
        pr_base,
        pr_new,
        report.base_label,
        precision_at,
    )
    _, calibration = report.curves.get("calibration", (None, None))
    if calibration:
        bins = ", ".join(f'"{x:.2f}"' for x in calibration.x)
        lines += [
            "```mermaid",
            "xychart-beta",
            '    title "Calibration, this PR: observed rate (1st line) vs perfect (2nd line)"',
            f'    x-axis "mean predicted score per bin" [{bins}]',
            '    y-axis "observed positive rate" 0 --> 1',
            f"    line [{', '.join(f'{y:.3f}' for y in calibration.y)}]",
            f"    line [{', '.join(f'{x:.3f}' for x in calibration.x)}]",
            "```",
            "",
        ]
    return lines


def _chart(
    title: str,
    x_label: str,
    y_label: str,
    base: Curve | None,
    new: Curve | None,
    base_label: str,
    sample: Any,
) -> list[str]:
    """A mermaid line chart (GitHub renders it inline): base first, this PR second."""
    series = [(name, c) for name, c in ((base_label, base), ("this PR", new)) if c]
    if not series:
        return []
    grid = ", ".join(f"{x:g}" for x in CHART_GRID)
    names = ", ".join(
        f"{_escape(name).replace(chr(34), chr(39))} ({rank} line)"
        for rank, (name, _) in zip(("1st", "2nd"), series, strict=False)
    )
    lines = [
        "```mermaid",
        "xychart-beta",
        f'    title "{title}: {names}"',
        f'    x-axis "{x_label}" [{grid}]',
        f'    y-axis "{y_label}" 0 --> 1',
    ]
    for _, curve in series:
        values = ", ".join(f"{sample(curve, x):.3f}" for x in CHART_GRID)
        lines.append(f"    line [{values}]")
    return [*lines, "```", ""]


def write(report: ReportData, out: Path) -> str:
    """Render the report to `out` (folders created) and return the body."""
    body = render(report)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(body)
    return body
