"""reportAucGuard (.github/scripts/github-api.js), run by node through the github-script
stand-in's fake GitHub API (tests/fixtures/actions/README.md: GitHub itself cannot run
here): a failure opens one issue and dispatches rollback.yml for its environment once; the
same failure on the next schedule comments on that issue and dispatches nothing; `retrain`
dispatches train.yml and `alert` only opens the issue."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import REPO_ROOT
from tests.fixtures.actions.harness import EVENTS, REPOSITORY, STANDINS

SCRIPT = (
    "await require('./.github/scripts/github-api.js').reportAucGuard({ github, context, core })"
)


def artifact(folder: Path, failures: list[tuple[str, str, str]]) -> None:
    """What `make monitor-guard` uploads: guard.json with its actions, and the issue bodies."""
    actions = []
    for env, version, action in failures:
        marker = f"<!-- modelops-auc-guard env={env} version={version} -->"
        issue = f"build/auc-guard/issue-{env}.md"
        (folder / issue).parent.mkdir(parents=True, exist_ok=True)
        (folder / issue).write_text(f"{marker}\nAUC dropped in {env}.\n")
        title = f"AUC drop in {env}: version {version} at 0.600 (gate 0.840)"
        actions.append(
            {"environment": env, "version": version, "action": action, "title": title,
             "marker": marker, "issue_file": issue}
        )  # fmt: skip
    (folder / "reports/auc_guard").mkdir(parents=True, exist_ok=True)
    report = {"verdict": "failed", "actions": actions}
    (folder / "reports/auc_guard/guard.json").write_text(json.dumps(report))


def run_script(tmp_path: Path, failures: list[tuple[str, str, str]]) -> dict[str, Any]:
    workspace = tmp_path / "workspace"
    shutil.rmtree(workspace, ignore_errors=True)
    shutil.copytree(REPO_ROOT / ".github/scripts", workspace / ".github/scripts")
    artifact(workspace / "auc-guard", failures)
    env = {
        "PATH": os.environ["PATH"],
        "INPUT_SCRIPT": SCRIPT,
        "ACT_FAKES": str(tmp_path / "fakes"),
        "ACT_STANDINS": str(STANDINS),
        "GITHUB_EVENT_PATH": str(EVENTS / "schedule.json"),
        "GITHUB_EVENT_NAME": "schedule",
        "GITHUB_REPOSITORY": REPOSITORY,
        "GITHUB_WORKSPACE": str(workspace),
        "ARTIFACT_DIR": "auc-guard",
        "REPORT_FILE": "reports/auc_guard/guard.json",
    }
    (tmp_path / "fakes").mkdir(exist_ok=True)
    done = subprocess.run(
        ["node", str(STANDINS / "github-script/index.js")],
        cwd=workspace, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    state: dict[str, Any] = json.loads((tmp_path / "fakes/github.json").read_text())
    return state


def test_one_issue_and_one_rollback_per_failure_then_comments(tmp_path: Path) -> None:
    first = run_script(tmp_path, [("production", "3", "rollback")])
    (issue,) = first["issues"]
    assert issue["labels"] == ["model-auc"] and issue["title"].startswith("AUC drop in production")
    assert first["dispatches"] == [
        {
            "workflow_id": "rollback.yml",
            "ref": "main",
            "inputs": {"environment": "production", "reason": f"AUC guard: {issue['title']} "
                       f"(#{issue['number']})"},
        }
    ]  # fmt: skip
    again = run_script(tmp_path, [("production", "3", "rollback")])
    assert again["issues"] == first["issues"] and again["dispatches"] == first["dispatches"]
    assert [c["issue_number"] for c in again["comments"]] == [issue["number"]]
    # Another version failing later is another issue, with its own rollback.
    later = run_script(tmp_path, [("production", "2", "rollback"), ("staging", "3", "retrain")])
    assert len(later["issues"]) == 3
    assert [d["workflow_id"] for d in later["dispatches"]] == [
        "rollback.yml",
        "rollback.yml",
        "train.yml",
    ]


def test_alert_only_opens_the_issue(tmp_path: Path) -> None:
    state = run_script(tmp_path, [("staging", "5", "alert")])
    assert len(state["issues"]) == 1 and state["dispatches"] == []
