"""rollback.yml run for real with act: champion back, its image applied, GitOps file pushed.

The team's side: a SQLite MLflow registry where version 1 and then version 2 went through
successful canaries (each tagged with its image; 2 records that it replaced 1), and the
repository's `origin`, a local bare repository standing in for GitHub (its push URL; act
still reads the GitHub URL to name the repository). Terraform is the stand-in in
tests/fixtures/terraform_standin (no cluster, no provider registry here), which records what
`terraform apply` was asked to apply.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from modelops.deploy.gitops import TrafficSplit, write_state
from tests.conftest import REPO_ROOT
from tests.fixtures.actions.harness import Act, ActRun, act_project, event_payload, git
from tests.fixtures.team_registry import MODEL, registry_promoted

pytestmark = pytest.mark.e2e
IMAGES = [f"ghcr.io/acme/credit-scoring@sha256:{c * 64}" for c in "12"]
TERRAFORM = REPO_ROOT / "tests/fixtures/terraform_standin/terraform"


@pytest.fixture(scope="module")
def rolled_back(
    tmp_path_factory: pytest.TempPathFactory, trained_model: dict[str, Any]
) -> tuple[ActRun, Act, dict[str, Path]]:
    root = tmp_path_factory.mktemp("rollback")
    store = root / "team/mlflow.db"
    registry_promoted(trained_model, store, IMAGES)
    repo = act_project(root / "repo", root / "team/dvc-remote")
    # What is live in staging (and committed): version 2.
    write_state(repo / "infra/terraform/envs/staging", TrafficSplit(IMAGES[1], "2"))
    git(repo, "commit", "-qam", "gitops(staging): stable model version 2 at 100%")
    origin = root / "team/origin.git"
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
    git(repo, "push", "-q", str(origin), "main")
    git(repo, "remote", "set-url", "--push", "origin", str(origin))
    act = Act(repo, root)
    log = root / "terraform.jsonl"
    run = act.run(
        "workflow_dispatch",
        event_payload("workflow_dispatch", inputs={"environment": "staging"}),
        "rollback.yml",
        "rollback",
        variables={"MLFLOW_TRACKING_URI": f"sqlite:///{store}"},
        secrets={"GITHUB_TOKEN": "test-token"},
        env={"ACT_TERRAFORM": str(TERRAFORM), "TERRAFORM_STANDIN_LOG": str(log)},
        label="rollback",
    )
    return run, act, {"store": store, "origin": origin, "log": log}


def test_rollback_applies_the_previous_champion_and_moves_the_alias(
    rolled_back: tuple[ActRun, Act, dict[str, Path]],
) -> None:
    run, _, team = rolled_back
    assert run.jobs() == {"rollback": "succeeded"}, run.log[-4000:]
    calls = [json.loads(line) for line in team["log"].read_text().splitlines()]
    assert [c["command"] for c in calls] == ["init", "apply"]
    assert all(Path(c["chdir"]).name == "staging" for c in calls)
    assert calls[1]["tfvars"] == TrafficSplit(IMAGES[0], "1").to_json()
    client = MlflowClient(tracking_uri=f"sqlite:///{team['store']}")
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"
    assert client.get_model_version(MODEL, "2").tags["rolled_back"].startswith("manual rollback")


def test_rollback_commits_the_gitops_file_to_origin(
    rolled_back: tuple[ActRun, Act, dict[str, Path]],
) -> None:
    _, act, team = rolled_back
    origin = team["origin"]
    subject = git(origin, "log", "-1", "--format=%s", "main")
    assert subject.startswith("gitops(staging): stable model version 1 at 100% (manual rollback")
    assert git(origin, "log", "-1", "--format=%an", "main") == "github-actions[bot]"
    state = git(origin, "show", "main:infra/terraform/envs/staging/deploy.auto.tfvars.json")
    assert json.loads(state) == TrafficSplit(IMAGES[0], "1").to_json()
    # One commit on top of what was live, touching that one file.
    assert git(origin, "rev-parse", "main~1") == git(act.repo, "rev-parse", "main")
    changed = git(origin, "show", "--name-only", "--format=", "main")
    assert changed == "infra/terraform/envs/staging/deploy.auto.tfvars.json"
