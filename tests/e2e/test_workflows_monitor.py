"""monitor.yml run for real with act: drifted logs dispatch a retrain and open an issue; a
served version whose AUC on later labels dropped is rolled back.

The team's side lives outside the throwaway repository, as it would outside a runner: a
SQLite MLflow registry whose `champion` is a real trained model (its training reference is
what the logs are judged against), and a folder of prediction logs named by the
PREDICTION_LOGS_URL variable (`dvc get-url` copies it, as it would copy an s3:// prefix).
Dispatching train.yml and opening the issue are the workflow's own github-script code, run by
the stand-in against a fake GitHub API (tests/fixtures/actions/README.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from modelops.config import Params
from modelops.monitor.issue import ISSUE_LABEL, ISSUE_MARKER
from modelops.pipeline.data import labels
from modelops.pipeline.evaluate import load_local_model, score
from serving.process import ServiceProcess
from tests.conftest import REPO_ROOT
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


def test_a_served_version_whose_auc_dropped_is_rolled_back(
    tmp_path_factory: pytest.TempPathFactory, trained_model: dict[str, Any], params: Params
) -> None:
    """The label-aware guard end to end: the registered version (its gate AUC recorded) is
    exported by the CLI and served as production's stable track by the real service, whose
    day-partitioned logs the shipper's layout keeps; labels arrive later, and the world has
    changed (30 % of outcomes went the other way), so the served version's AUC fell. The
    schedule's `auc` job catches it and `auc-action` opens one issue and dispatches
    rollback.yml for production (GitHub is the stand-in's fake API)."""
    root = tmp_path_factory.mktemp("monitor-auc")
    test = pd.read_parquet(trained_model["test_path"])
    truth = test[TARGET].astype(str).tolist()
    model = load_local_model(Path(trained_model["model_dir"]))
    gate_auc = roc_auc_score(labels(test, params.data), score(model, test, params))
    store = root / "team/mlflow.db"
    version = registry_copy(trained_model, store, ["champion"], {"gate_auc": f"{gate_auc:.6f}"})
    image_model = root / "image-model"
    exported = subprocess.run(
        [str(Path(sys.executable).with_name("modelops")), "export-model",
         "--model-uri", f"models:/{MODEL}/{version}", "--out", str(image_model)],
        cwd=REPO_ROOT, env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store}"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr

    logs = root / "team/prediction-logs"  # the bucket: <environment>/date=YYYY-MM-DD/...
    env = {
        "MODELOPS_ENVIRONMENT": "production",
        "MODELOPS_TRACK": "stable",
        "MODELOPS_PREDICTION_LOG": str(logs / "production"),
    }
    records = json.loads(test[params.data.features].to_json(orient="records"))
    served: list[tuple[str, int, str]] = []
    with (
        ServiceProcess(model=image_model, env=env, log=root / "service.log") as service,
        httpx.Client(timeout=30) as client,
    ):
        for start in range(0, len(records), 100):
            answer = client.post(f"{service.url}/predict", json=records[start : start + 100])
            assert answer.status_code == 200, answer.text
            rid = answer.json()["request_id"]
            served += [(rid, i, truth[start + i]) for i in range(len(answer.json()["predictions"]))]

    flip = np.random.default_rng(11).random(len(served)) < 0.3
    other = {"bad": "good", "good": "bad"}
    later = pd.DataFrame(
        {
            "request_id": [s[0] for s in served] + ["never-logged"] * 5,
            "row": [s[1] for s in served] + list(range(5)),
            "label": [other[s[2]] if f else s[2] for s, f in zip(served, flip, strict=True)]
            + ["bad"] * 5,
            "labeled_at": "2026-12-04T09:00:00Z",
        }
    )
    later = pd.concat([later, later.head(3)], ignore_index=True)  # a label sent twice
    (root / "team/labels").mkdir(parents=True)
    later.to_csv(root / "team/labels/2026-12-04.csv", index=False)

    act = Act(act_project(root / "repo", root / "team/dvc-remote"), root)
    run = act.run(
        "schedule",
        event_payload("schedule"),
        "monitor.yml",
        "auc-action",
        variables={
            "MLFLOW_TRACKING_URI": f"sqlite:///{store}",
            "PREDICTION_LOGS_URL": str(logs),
            "PREDICTION_LABELS_URL": str(root / "team/labels"),
        },
        label="monitor-auc",
    )
    assert run.jobs() == {"auc": "succeeded", "auc-action": "succeeded"}, run.log[-4000:]
    assert run.outputs()["verdict"] == "failed" and run.outputs()["act"] == "true"
    report = json.loads((act.artifact("auc-guard") / "reports/auc_guard/guard.json").read_text())
    (production,) = report["environments"]
    assert production["environment"] == "production" and production["version"] == version
    assert production["served_from"] == "gitops" and production["rows"] == len(served)
    assert production["gate_auc"] == pytest.approx(gate_auc, abs=1e-6)
    assert production["ci_high"] < gate_auc - params.monitor.max_auc_drop
    assert report["feedback"] == {
        "labels": len(served) + 8, "matched": len(served), "unmatched": 5,
        "duplicates": 3, "conflicting": 0, "blank": 0,
    }  # fmt: skip
    github = act.github_state()
    (issue,) = github["issues"]
    assert issue["labels"] == ["model-auc"]
    assert issue["title"].startswith(f"AUC drop in production: version {version} at 0.")
    assert issue["body"].startswith(f"<!-- modelops-auc-guard env=production version={version} -->")
    assert "`rollback.yml` was dispatched" in issue["body"]
    assert github["dispatches"] == [
        {
            "workflow_id": "rollback.yml",
            "ref": "main",
            "inputs": {
                "environment": "production",
                "reason": f"AUC guard: {issue['title']} (#{issue['number']})",
            },
        }
    ]
