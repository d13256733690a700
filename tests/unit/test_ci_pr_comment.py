"""The PR report: verdicts, curve sampling, markdown, and the facts gathered from DVC and git."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from modelops.ci.github import run_url_from_env
from modelops.ci.pr_comment import (
    MARKER,
    Change,
    Curve,
    ReportData,
    Verdict,
    collect,
    judge,
    precision_at,
    read_curve,
    render,
    tpr_at,
)
from modelops.errors import Refused
from tests.conftest import copy_project

BIN = Path(sys.executable).parent
GATE_PASSED = {"passed": True, "challenger_run_id": "r1", "challenger_auc": 0.84, "reasons": []}
GATE_FAILED = {
    "passed": False,
    "challenger_run_id": "r1",
    "challenger_auc": 0.61,
    "reasons": ["challenger AUC 0.6100 is below gate.min_auc 0.78"],
}


def test_judge_reads_the_gate_when_the_pipeline_is_complete() -> None:
    assert judge([], GATE_PASSED, "r1").state == "passed"
    assert judge([], GATE_FAILED, "r1").state == "failed"


def test_a_rejecting_gate_leaves_only_the_gate_stage_out_of_date() -> None:
    verdict = judge(["gate"], GATE_FAILED, "r1")
    assert verdict == Verdict("failed", "gate FAILED", GATE_FAILED["reasons"][0])


def test_a_gate_report_of_another_run_is_not_this_runs_verdict() -> None:
    # The committed gate.json judged run r0; this run trained r1 and stopped before the gate.
    stale_gate = {**GATE_FAILED, "challenger_run_id": "r0"}
    assert judge(["gate"], stale_gate, "r1").state == "incomplete"
    # A committed passing report must not make a failed pipeline look green.
    verdict = judge(["train", "evaluate", "gate"], GATE_PASSED, "r1")
    assert verdict.state == "incomplete" and "`train`" in verdict.headline


def test_curve_sampling_takes_the_best_point_within_the_constraint() -> None:
    roc = Curve(x=[0.0, 0.0, 0.05, 0.1, 0.5, 1.0], y=[0.0, 0.2, 0.4, 0.6, 0.9, 1.0])
    assert tpr_at(roc, 0.0) == 0.2
    assert tpr_at(roc, 0.07) == 0.4
    assert tpr_at(roc, 0.1) == 0.6
    pr = Curve(x=[1.0, 0.8, 0.5, 0.2], y=[0.3, 0.5, 0.7, 0.9])
    assert precision_at(pr, 0.5) == 0.7
    assert precision_at(pr, 0.9) == 0.3
    assert read_curve("fpr,tpr\n0.0,0.0\n1.0,1.0\n") == Curve([0.0, 1.0], [0.0, 1.0])
    assert read_curve(None) is None and read_curve("fpr,tpr\n") is None


def sample_report(**overrides: object) -> ReportData:
    fields: dict[str, object] = {
        "base_label": "main",
        "base_commit": "a" * 40,
        "head_commit": "b" * 40,
        "verdict": Verdict("passed", "gate PASSED", "challenger ROC AUC 0.8416"),
        "metrics": {
            "roc_auc": Change("roc_auc", 0.8396, 0.8416),
            "log_loss": Change("log_loss", 0.4417, 0.4500),
            "test_rows": Change("test_rows", 1119.0, 1119.0),
            "segments.fixed.roc_auc": Change("segments.fixed.roc_auc", 0.83, 0.84),
            "segments.fixed.rows": Change("segments.fixed.rows", 709, 709),
            "segments.new|seg.roc_auc": Change("segments.new|seg.roc_auc", None, 0.7),
        },
        "params": [Change("train.hist_gradient_boosting.max_iter", 250, 150)],
        "gate_markdown": "## Model gate: PASSED\n\n| model | ROC AUC |\n\n- all gate checks passed",
        "curves": {"roc": (Curve([0.0, 1.0], [0.0, 1.0]), Curve([0.0, 0.1, 1.0], [0.0, 0.5, 1.0]))},
        "run_url": "https://github.com/acme/credit-scoring/actions/runs/42",
    }
    fields.update(overrides)
    return ReportData(**fields)  # type: ignore[arg-type]


def test_render_starts_with_the_marker_and_shows_the_diffs() -> None:
    body = render(sample_report())
    assert body.startswith(MARKER + "\n## ✅ Model report: gate PASSED\n")
    assert "`bbbbbbbb` compared with **main** (`aaaaaaaa`)" in body
    assert "| roc_auc | 0.8396 | 0.8416 | +0.0020 ✅ |" in body
    assert "| log_loss | 0.4417 | 0.4500 | +0.0083 ⚠️ |" in body  # lower is better
    assert "| test_rows | 1119 | 1119 | 0 |" in body
    assert "| fixed | 709 | 0.8300 | 0.8400 | +0.0100 ✅ |" in body
    assert "| new\\|seg | — | — | 0.7000 | — |" in body  # pipes escaped, new segment
    assert "| `train.hist_gradient_boosting.max_iter` | 250 | 150 |" in body
    assert "## Model gate" not in body and "- all gate checks passed" in body
    assert "| recall at FPR ≤ 0.1 | 0.0000 | 0.5000 |" in body
    assert body.count("```mermaid") == 1 and "line [0.000, 0.500," in body
    assert "[CI run](https://github.com/acme/credit-scoring/actions/runs/42)" in body


def test_render_says_so_when_nothing_changed_or_the_run_stopped_early() -> None:
    verdict = Verdict("incomplete", "pipeline stopped at stage `split`", "see the log")
    body = render(sample_report(params=[], verdict=verdict, curves={}, run_url=None))
    assert "## ⚠️ Model report: pipeline stopped at stage `split`" in body
    assert "No parameter differs from main." in body
    assert "### Gate (committed report: the run did not reach the gate)" in body
    assert "mermaid" not in body and "CI run" not in body


def test_run_url_comes_from_the_actions_environment() -> None:
    env = {"GITHUB_RUN_ID": "9", "GITHUB_REPOSITORY": "o/r", "GITHUB_SERVER_URL": "https://x"}
    assert run_url_from_env(env) == "https://x/o/r/actions/runs/9"
    assert run_url_from_env({}) is None


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project copy whose workspace differs from its commit in a metric and a param."""
    root = copy_project(tmp_path_factory.mktemp("report"))
    metrics = root / "reports/metrics.json"
    values = json.loads(metrics.read_text())
    values["roc_auc"] = round(values["roc_auc"] + 0.01, 6)
    metrics.write_text(json.dumps(values))
    params = root / "params.yaml"
    params.write_text(params.read_text().replace("min_auc: 0.78", "min_auc: 0.8"))
    return root


def test_collect_asks_dvc_and_git_for_the_diff(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{BIN}:/usr/bin:/bin")
    base = json.loads(git(project, "show", "HEAD:reports/metrics.json"))
    report = collect(project, "HEAD", base_label="main")
    assert report.base_commit == report.head_commit == git(project, "rev-parse", "HEAD")
    roc = report.metrics["roc_auc"]
    assert roc.old == base["roc_auc"] and roc.new == pytest.approx(base["roc_auc"] + 0.01)
    assert report.params == [Change("gate.min_auc", 0.78, 0.8)]
    # The copy has no pipeline outputs: DVC says assemble is the first stage not reproduced.
    assert report.verdict.state == "incomplete" and "`assemble`" in report.verdict.headline
    roc_base, roc_now = report.curves["roc"]
    assert roc_base == roc_now and roc_now is not None and len(roc_now.x) > 10
    assert report.gate_markdown is not None and "Model gate" in report.gate_markdown


def test_collect_refuses_a_base_missing_from_the_clone(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{BIN}:/usr/bin:/bin")
    with pytest.raises(Refused, match=r"'origin/nope' is not in this clone.*fetch-depth: 0"):
        collect(project, "origin/nope")
