"""monitor.yml run for real with act: drifted logs dispatch a retrain and open an issue.

The team's side lives outside the throwaway repository, as it would outside a runner: a
SQLite MLflow registry whose `champion` is a real trained model (its training reference is
what the logs are judged against), and a folder of prediction logs named by the
PREDICTION_LOGS_URL variable (`dvc get-url` copies it, as it would copy an s3:// prefix).
Dispatching train.yml and opening the issue are the workflow's own github-script code, run by
the stand-in against a fake GitHub API (tests/fixtures/actions/README.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from modelops.monitor.issue import ISSUE_LABEL, ISSUE_MARKER
from tests.fixtures.actions.harness import Act, ActRun, act_project, event_payload
from tests.fixtures.team_registry import MODEL, registry_copy

pytestmark = pytest.mark.e2e
TARGET = "Status"


def log_lines(frame: pd.DataFrame, version: str) -> str:
    """Rows as the service logs them: one JSON object per prediction, features nested."""
    records = json.loads(frame.drop(columns=[TARGET]).to_json(orient="records"))
    return "".join(
        json.dumps({"model_version": version, "environment": "production", "features": r}) + "\n"
        for r in records
    )


@pytest.fixture(scope="module")
def team(
    tmp_path_factory: pytest.TempPathFactory, trained_model: dict[str, Any]
) -> dict[str, Path]:
    """A registry with a champion, drifted prediction logs and an undrifted data sample."""
    root = tmp_path_factory.mktemp("monitor")
    store = root / "team/mlflow.db"
    assert registry_copy(trained_model, store, ["champion"]) == "1"
    test = pd.read_parquet(trained_model["test_path"])
    drifted = test.copy()
    drifted["Income"] = drifted["Income"] * 1.5
    drifted["Amount"] = drifted["Amount"] * 1.5
    logs = root / "team/prediction-logs"
    logs.mkdir()
    (logs / "2026-12-02.jsonl").write_text(log_lines(drifted.iloc[:600], "1"))
    (logs / "2026-12-03.jsonl").write_text(log_lines(drifted.iloc[600:], "1"))
    sample = root / "team/sample"
    sample.mkdir()
    test.to_parquet(sample / "sample.parquet", index=False)
    return {"root": root, "store": store, "logs": logs, "sample": sample}


@pytest.fixture(scope="module")
def act(team: dict[str, Path]) -> Act:
    repo = act_project(team["root"] / "repo", team["root"] / "team/dvc-remote")
    return Act(repo, team["root"])


def run_monitor(act: Act, team: dict[str, Path], event: str, label: str, **fields: Any) -> ActRun:
    run = act.run(
        event,
        event_payload(event, **fields),
        "monitor.yml",
        "retrain",
        variables={
            "MLFLOW_TRACKING_URI": f"sqlite:///{team['store']}",
            "PREDICTION_LOGS_URL": str(team["logs"]),
        },
        label=label,
    )
    return run


@pytest.fixture(scope="module")
def drifted(act: Act, team: dict[str, Path]) -> tuple[ActRun, dict[str, Any]]:
    """The daily schedule on logs whose Income and Amount moved up by half."""
    run = run_monitor(act, team, "schedule", "monitor-drifted")
    return run, act.github_state()


@pytest.fixture(scope="module")
def clean(
    drifted: tuple[ActRun, dict[str, Any]], act: Act, team: dict[str, Path]
) -> tuple[ActRun, dict[str, Any]]:
    """A manual run on an undrifted data sample of the same size (the dispatch input)."""
    run = run_monitor(
        act, team, "workflow_dispatch", "monitor-clean", inputs={"logs_url": str(team["sample"])}
    )
    return run, act.github_state()


def test_drifted_logs_dispatch_a_retrain_and_open_an_issue(
    drifted: tuple[ActRun, dict[str, Any]], act: Act
) -> None:
    run, github = drifted
    assert run.jobs() == {"drift": "succeeded", "retrain": "succeeded"}, run.log[-4000:]
    assert run.outputs()["verdict"] == "drift" and run.outputs()["retrain"] == "true"
    assert github["dispatches"] == [{"workflow_id": "train.yml", "ref": "main", "inputs": {}}]
    assert len(github["issues"]) == 1
    issue = github["issues"][0]
    assert issue["labels"] == [ISSUE_LABEL]
    assert issue["title"].startswith("Data drift in production: ")
    assert "Income" in issue["title"] and "Amount" in issue["title"]
    body = issue["body"]
    assert body.startswith(ISSUE_MARKER + "\n")
    assert "verdict `drift` on 1119 rows" in body
    report = json.loads((act.artifact("drift-report") / "reports/drift/drift.json").read_text())
    assert report["verdict"] == "drift" and {"Income", "Amount"} <= set(report["drifted"])
    # Judged against the champion's reference in the registry, on both log files.
    assert report["sources"]["reference"] == f"models:/{MODEL}@champion"
    assert report["sources"]["model_versions_in_logs"] == {"1": 1119}
    for column in ("Income", "Amount"):
        row = next(line for line in body.splitlines() if line.startswith(f"| {column} |"))
        assert row.endswith("| DRIFT |"), row
    assert "![" not in body  # plots live in the artifact, not as broken links in the issue
    assert (act.artifact("drift-report") / "reports/drift/drift.html").is_file()
    assert (act.artifact("drift-report") / "build/drift-issue.md").read_text() == body


def test_clean_sample_does_nothing(
    clean: tuple[ActRun, dict[str, Any]], drifted: tuple[ActRun, dict[str, Any]]
) -> None:
    run, github = clean
    assert run.jobs() == {"drift": "succeeded"}, run.log[-4000:]  # the retrain job is skipped
    assert run.outputs()["verdict"] in ("ok", "warning") and run.outputs()["retrain"] == "false"
    assert "sample.parquet" in run.log
    assert github["dispatches"] == drifted[1]["dispatches"]
    assert github["issues"] == drifted[1]["issues"]
    assert github["calls"] == drifted[1]["calls"]
