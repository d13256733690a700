"""The label-aware guard: labels join the logs by (request_id, row) with every label
accounted for; a degraded served version is caught, a small sample is inconclusive, and a
healthy one passes; the verdict follows the interval, not the point estimate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelops.config import Params
from modelops.errors import DataError
from modelops.monitor.auc_guard import judge, write_guard
from modelops.monitor.labels import join_feedback, read_labels
from modelops.pipeline.stats import delong_interval

GATE_AUC = 0.84


def logs_and_labels(
    rows: int, separation: float, seed: int, environment: str = "production", version: str = "3"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Logged predictions (two rows per request) and their labels ('bad' is positive):
    scores separate the classes by `separation` standard deviations."""
    rng = np.random.default_rng(seed)
    y = rng.random(rows) < 0.3
    scores = 1 / (1 + np.exp(-(rng.normal(size=rows) + separation * y - 1)))
    logs = pd.DataFrame(
        {
            "request_id": [f"{environment}-{i // 2}" for i in range(rows)],
            "row": [i % 2 for i in range(rows)],
            "timestamp": "2026-12-01T10:00:00.000+00:00",
            "environment": environment,
            "track": "stable",
            "model_version": version,
            "score": scores,
        }
    )
    labels = logs[["request_id", "row"]].assign(label=np.where(y, "bad", "good"))
    return logs, labels


def guard(logs: pd.DataFrame, labels: pd.DataFrame, params: Params, **served: str):  # type: ignore[no-untyped-def]
    feedback = join_feedback(logs, labels, ["labels.csv"])
    return judge(feedback, served or {"production": "3"}, lambda v: GATE_AUC, params)


def test_delong_interval_matches_the_bootstrap_width() -> None:
    from modelops.pipeline.stats import bootstrap_auc_interval

    logs, labels = logs_and_labels(1500, 2.0, seed=1)
    y = (labels["label"] == "bad").to_numpy(dtype=int)
    auc, low, high = delong_interval(y, logs["score"].to_numpy(), 0.95)
    b_low, b_high = bootstrap_auc_interval(y, logs["score"].to_numpy(), 400, 0.95, 3)
    assert low < auc < high
    assert abs((high - low) - (b_high - b_low)) < 0.01


def test_a_degraded_served_version_is_caught(params: Params) -> None:
    logs, labels = logs_and_labels(1500, 0.6, seed=2)  # AUC about 0.66
    report = guard(logs, labels, params)
    (production,) = report.environments
    assert report.verdict == "failed" and production.verdict == "failed"
    assert production.ci_high is not None and production.ci_high < params.gate.min_auc
    assert {c.name: c.result for c in production.checks} == {
        "gate.min_auc": "failed",
        "gate AUC - monitor.max_auc_drop": "failed",
    }
    assert production.action == params.monitor.on_auc_drop == "rollback"
    assert production.rows == 1500 and production.gate_auc == GATE_AUC


def test_a_small_sample_is_inconclusive_not_alarming(params: Params) -> None:
    logs, labels = logs_and_labels(1500, 0.6, seed=2)
    few = guard(logs.head(120), labels.head(120), params)  # under min_labeled_rows
    assert few.verdict == "inconclusive" and few.environments[0].auc is None
    assert "too few to judge" in few.environments[0].reasons[0]
    # Enough rows to compute, too few to be sure: the interval straddles the line.
    small = params.model_copy(
        update={"monitor": params.monitor.model_copy(update={"min_labeled_rows": 50})}
    )
    logs, labels = logs_and_labels(70, 0.9, seed=6)  # AUC 0.66 on 70 rows: [0.52, 0.81]
    (result,) = guard(logs, labels, small).environments
    assert result.auc is not None and result.auc < params.gate.min_auc  # the point is under ...
    assert result.ci_high is not None and result.ci_high >= params.gate.min_auc  # ... not all
    assert result.verdict == "inconclusive" and result.action is None


def test_a_healthy_version_passes_and_other_versions_are_not_judged(params: Params) -> None:
    healthy_logs, healthy_labels = logs_and_labels(3000, 2.6, seed=3)
    old_logs, old_labels = logs_and_labels(400, 0.0, seed=4, version="2")
    old_logs["request_id"] = "old-" + old_logs["request_id"]
    old_labels["request_id"] = "old-" + old_labels["request_id"]
    report = guard(
        pd.concat([healthy_logs, old_logs]), pd.concat([healthy_labels, old_labels]), params
    )
    (production,) = report.environments
    assert production.verdict == "ok", production.reasons
    assert production.ci_low is not None and production.ci_low >= GATE_AUC - 0.05
    assert production.other_versions == {"2": 400}  # the useless old version is not judged


def test_labels_are_all_accounted_for(tmp_path: Path) -> None:
    logs, labels = logs_and_labels(10, 1.0, seed=6)
    extra = pd.DataFrame(
        {
            "request_id": ["production-0", "production-0", "nobody", "production-1"],
            "row": [0, 0, 0, 1],
            "label": ["good", "bad", "bad", None],
            "labeled_at": ["2026-12-03", "2026-12-04", "2026-12-03", "2026-12-03"],
        }
    )
    both = pd.concat([labels.assign(labeled_at="2026-12-02"), extra], ignore_index=True)
    (tmp_path / "labels").mkdir()
    both.iloc[:5].to_csv(tmp_path / "labels/a.csv", index=False)
    both.iloc[5:].to_parquet(tmp_path / "labels/b.parquet", index=False)
    frame, files = read_labels(tmp_path / "labels")
    assert len(files) == 2
    feedback = join_feedback(logs, frame, files)
    assert (feedback.labels, feedback.missing_labels) == (14, 1)
    assert (feedback.matched, feedback.unmatched_labels, feedback.duplicate_labels) == (10, 1, 2)
    assert feedback.unmatched_frame["request_id"].tolist() == ["nobody"]
    latest = feedback.frame.set_index(["request_id", "row"]).loc[("production-0", 0), "label"]
    assert latest == "bad"  # the latest labeled_at wins
    assert feedback.conflicting_labels == 1 + (labels.iloc[0]["label"] != "bad")


def test_bad_label_files_say_what_is_wrong(tmp_path: Path) -> None:
    pd.DataFrame({"request_id": ["a"], "label": ["bad"]}).to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(DataError, match=r"no column\(s\) \['row'\]"):
        read_labels(tmp_path / "x.csv")
    pd.DataFrame({"request_id": ["a"], "row": [0.5], "label": ["bad"]}).to_csv(
        tmp_path / "y.csv", index=False
    )
    with pytest.raises(DataError, match="'row' must be the row's index"):
        read_labels(tmp_path / "y.csv")


def test_the_report_names_each_failure_for_the_workflow(tmp_path: Path, params: Params) -> None:
    import json

    logs, labels = logs_and_labels(1500, 0.6, seed=2)
    staging_logs, staging_labels = logs_and_labels(100, 0.6, seed=7, environment="staging")
    report = guard(
        pd.concat([logs, staging_logs]),
        pd.concat([labels, staging_labels]),
        params,
        production="3",
        staging="3",
    )
    assert [e.verdict for e in report.environments] == ["failed", "inconclusive"]
    write_guard(report, tmp_path, tmp_path / "issues", "https://github.com/acme/x/actions/runs/1")
    data = json.loads((tmp_path / "guard.json").read_text())
    assert data["verdict"] == "failed"
    (action,) = data["actions"]
    assert action["environment"] == "production" and action["action"] == "rollback"
    assert action["issue_file"] == f"{tmp_path.as_posix()}/issues/issue-production.md"
    body = Path(action["issue_file"]).read_text()
    assert body.startswith(action["marker"] + "\n")
    assert action["marker"] == "<!-- modelops-auc-guard env=production version=3 -->"
    assert "`rollback.yml` was dispatched" in body and "runs/1" in body
    assert [p.name for p in (tmp_path / "issues").iterdir()] == ["issue-production.md"]
    assert "| production | 3 | 1500 |" in (tmp_path / "guard.md").read_text()


def test_canary_rows_and_old_lines_are_not_judged(params: Params) -> None:
    """The canary track is judged by its own analysis; lines written before the log had
    request_id and row cannot take a label."""
    logs, labels = logs_and_labels(400, 0.6, seed=8, environment="staging")
    logs["track"] = "canary"
    old = logs.head(3).assign(request_id=None, row=None)
    report = guard(pd.concat([logs, old]), labels, params, staging="3")
    assert report.environments == [] and report.verdict == "inconclusive"
    assert any("canary track only" in note for note in report.notes)
