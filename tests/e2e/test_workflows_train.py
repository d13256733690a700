"""train.yml run for real with act: a push to main retrains and registers; the weekly
schedule registers nothing when no batch arrived, and a new version when one did.

The team's stores sit outside the throwaway repository, as they would outside a GitHub
runner: the DVC remote is a folder (the project's `.dvc/config` points at it), MLflow is
a SQLite store given by the MLFLOW_TRACKING_URI repository variable, the data source
(`source.url`) is a folder standing in for the bucket where labeled batches land, and
`origin` is a local bare repository standing in for GitHub (its push URL). Each act run
starts in a fresh copy of the checkout, so what carries over between runs is only what a
real runner would have: the DVC remote (outputs + run cache), the MLflow registry, the
source and what the previous run pushed to main (the test checks it out, as GitHub would).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from tests.fixtures.actions.harness import Act, ActRun, act_project, event_payload, git

pytestmark = pytest.mark.e2e
MODEL = "credit-scoring"
BOT = "github-actions[bot]"


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train")
    (root / "team/source").mkdir(parents=True)
    return {
        "root": root,
        "remote": root / "team/dvc-remote",
        "mlflow": root / "team/mlflow.db",
        "artifacts": root / "team/mlartifacts",
        "source": root / "team/source",
        "origin": root / "team/origin.git",
    }


@pytest.fixture(scope="module")
def act(team: dict[str, Path]) -> Act:
    """A project whose main just received a params change (what merging a PR does): a tuned
    learning rate, and the data source pointed at the team's bucket."""
    repo = act_project(team["root"] / "repo", team["remote"])
    params = repo / "params.yaml"
    text = params.read_text()
    assert "    learning_rate: 0.05\n" in text
    text = text.replace("    learning_rate: 0.05\n", "    learning_rate: 0.06\n")
    spec = yaml.safe_load(text)
    assert spec["source"]["url"] == "data/incoming"
    params.write_text(text.replace("url: data/incoming ", f"url: {team['source']} ", 1))
    assert yaml.safe_load(params.read_text())["source"]["url"] == str(team["source"])
    git(repo, "commit", "-qam", "Tune the learning rate; batches land in the team's bucket")
    subprocess.run(["git", "init", "-q", "--bare", str(team["origin"])], check=True)
    git(repo, "push", "-q", str(team["origin"]), "main")
    git(repo, "remote", "set-url", "--push", "origin", str(team["origin"]))
    return Act(repo, team["root"])


def run_train(act: Act, team: dict[str, Path], event: str, label: str) -> ActRun:
    head = git(act.repo, "rev-parse", "HEAD")
    fields = {"after": head, "before": git(act.repo, "rev-parse", "HEAD~1")}
    payload = event_payload(event, **(fields if event == "push" else {}))
    run = act.run(
        event,
        payload,
        "train.yml",
        "train",
        variables={
            "MLFLOW_TRACKING_URI": f"sqlite:///{team['mlflow']}",
            "MLFLOW_ARTIFACT_ROOT": str(team["artifacts"]),
        },
        secrets={"GITHUB_TOKEN": "test-token"},
        label=label,
    )
    assert run.jobs() == {"train": "succeeded"}, run.log[-4000:]
    # The next run checks out main as the job left it on "GitHub".
    git(act.repo, "fetch", "-q", str(team["origin"]), "main")
    git(act.repo, "reset", "-q", "--hard", "FETCH_HEAD")
    return run


def registry(team: dict[str, Path]) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{team['mlflow']}")


def origin_head(team: dict[str, Path]) -> str:
    return git(team["origin"], "rev-parse", "main")


@pytest.fixture(scope="module")
def first(act: Act, team: dict[str, Path]) -> ActRun:
    """The push that changed params: the pipeline runs and a challenger is registered."""
    return run_train(act, team, "push", "train-push-1")


@pytest.fixture(scope="module")
def quiet_week(first: ActRun, act: Act, team: dict[str, Path]) -> tuple[ActRun, str]:
    """The weekly schedule with no new batch in the source."""
    before = origin_head(team)
    return run_train(act, team, "schedule", "train-schedule-quiet"), before


@pytest.fixture(scope="module")
def new_batch(
    quiet_week: tuple[ActRun, str], act: Act, team: dict[str, Path]
) -> tuple[ActRun, Path]:
    """The weekly schedule after a batch of labeled applicants landed in the source."""
    base = pd.read_csv(act.repo / "data/raw/credit_data.csv")
    batch = base.sample(400, random_state=3).reset_index(drop=True)
    path = team["source"] / "2026-12-07-applicants.csv"
    batch.assign(Amount=batch["Amount"] + 11).to_csv(path, index=False)
    return run_train(act, team, "schedule", "train-schedule-batch"), path


def test_push_to_main_trains_gates_registers_and_commits_the_lock(
    first: ActRun, act: Act, team: dict[str, Path]
) -> None:
    assert "Running stage 'train'" in first.log
    outputs = first.outputs()
    assert outputs["created"] == "true" and outputs["version"] == "1", outputs
    assert outputs["model_uri"] == f"models:/{MODEL}/1"
    versions = registry(team).search_model_versions(f"name = '{MODEL}'")
    assert [str(v.version) for v in versions] == ["1"]
    challenger = registry(team).get_model_version_by_alias(MODEL, "challenger")
    assert str(challenger.version) == "1"
    assert challenger.tags["gate"] == "passed"
    # Trained on the commit the push brought; the lock it produced is committed on top.
    assert challenger.tags["git_commit"] == git(act.repo, "rev-parse", "HEAD~1")
    assert git(team["origin"], "log", "-1", "--format=%an|%s", "main") == (
        f"{BOT}|retrain: registered {MODEL} v1"
    )
    changed = git(team["origin"], "show", "--name-only", "--format=", "main").splitlines()
    assert "dvc.lock" in changed and "reports/batches.json" in changed
    # The uploaded report is this run's: the gate judged the run that was registered.
    report = act.artifact("training-report")
    gate = json.loads((report / "reports/gate.json").read_text())
    assert gate["passed"] and gate["challenger_run_id"] == challenger.run_id
    assert (report / "dvc.lock").is_file()
    # The outputs and the run cache reached the team's DVC remote.
    assert any((team["remote"] / "runs").rglob("*")), "no run cache pushed"


def test_the_weekly_schedule_without_a_new_batch_does_nothing(
    quiet_week: tuple[ActRun, str], team: dict[str, Path]
) -> None:
    run, before = quiet_week
    # A fresh workspace: DVC restored everything from the remote instead of retraining.
    assert "no new batch in the source" in run.log
    assert "Running stage" not in run.log
    assert run.outputs()["created"] == "false" and run.outputs()["version"] == "1"
    assert len(registry(team).search_model_versions(f"name = '{MODEL}'")) == 1
    assert origin_head(team) == before, "nothing changed, yet something was committed"


def test_the_weekly_schedule_with_a_new_batch_registers_and_commits(
    new_batch: tuple[ActRun, Path], act: Act, team: dict[str, Path]
) -> None:
    run, path = new_batch
    assert "Running stage 'assemble'" in run.log and "Running stage 'train'" in run.log
    outputs = run.outputs()
    assert outputs["created"] == "true" and outputs["version"] == "2", outputs
    assert outputs["new_batches"] == "1" and outputs["quarantined"] == "0"
    version = registry(team).get_model_version(MODEL, "2")
    tags = registry(team).get_run(version.run_id).data.tags
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    assert tags["data_batches"] == f"{path.name}:{md5}"
    subject = git(team["origin"], "log", "-1", "--format=%an|%s", "main")
    assert subject == f"{BOT}|retrain: +1 batch(es), registered {MODEL} v2"
    lock = yaml.safe_load(git(team["origin"], "show", "main:dvc.lock"))
    source_dep = next(
        d for d in lock["stages"]["assemble"]["deps"] if d["path"] == str(team["source"])
    )
    assert source_dep["nfiles"] == 1
    report = json.loads(git(team["origin"], "show", "main:reports/batches.json"))
    assert [(b["name"], b["status"]) for b in report["batches"]] == [(path.name, "included")]
