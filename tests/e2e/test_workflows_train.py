"""train.yml run for real with act: retrain on a push to main, register once, then nothing.

The team's stores sit outside the throwaway repository, as they would outside a GitHub
runner: the DVC remote is a folder (the project's `.dvc/config` points at it) and MLflow is
a SQLite store given by the MLFLOW_TRACKING_URI repository variable. Each act run starts in a
fresh copy of the checkout, so what carries over between runs is only what a real runner
would have: the DVC remote (outputs + run cache) and the MLflow registry.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.fixtures.actions.harness import Act, ActRun, act_project, event_payload, git

pytestmark = pytest.mark.e2e
MODEL = "credit-scoring"


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train")
    return {
        "root": root,
        "remote": root / "team/dvc-remote",
        "mlflow": root / "team/mlflow.db",
        "artifacts": root / "team/mlartifacts",
    }


@pytest.fixture(scope="module")
def act(team: dict[str, Path]) -> Act:
    """A project whose main just received a params change (what merging a PR does)."""
    repo = act_project(team["root"] / "repo", team["remote"])
    params = repo / "params.yaml"
    text = params.read_text()
    assert "    learning_rate: 0.05\n" in text
    params.write_text(text.replace("    learning_rate: 0.05\n", "    learning_rate: 0.06\n"))
    git(repo, "commit", "-qam", "Tune the learning rate")
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
        label=label,
    )
    assert run.jobs() == {"train": "succeeded"}, run.log[-4000:]
    return run


def registry(team: dict[str, Path]) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{team['mlflow']}")


@pytest.fixture(scope="module")
def first(act: Act, team: dict[str, Path]) -> ActRun:
    """The push that changed params: the pipeline runs and a challenger is registered."""
    return run_train(act, team, "push", "train-push-1")


@pytest.fixture(scope="module")
def again(first: ActRun, act: Act, team: dict[str, Path]) -> ActRun:
    """A manual run on the same commit: nothing changed."""
    return run_train(act, team, "workflow_dispatch", "train-dispatch")


def test_push_to_main_trains_gates_and_registers_a_challenger(
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
    assert challenger.tags["git_commit"] == git(act.repo, "rev-parse", "HEAD")
    # The uploaded report is this run's: the gate judged the run that was registered.
    report = act.artifact("training-report")
    gate = json.loads((report / "reports/gate.json").read_text())
    assert gate["passed"] and gate["challenger_run_id"] == challenger.run_id
    assert (report / "dvc.lock").is_file()
    # The outputs and the run cache reached the team's DVC remote.
    assert any((team["remote"] / "runs").rglob("*")), "no run cache pushed"


def test_rerun_with_nothing_changed_registers_nothing(again: ActRun, team: dict[str, Path]) -> None:
    # A fresh workspace: DVC restored the model from the run cache instead of retraining,
    # so the MLflow run is the one already registered.
    assert "Stage 'train' is cached - skipping run" in again.log
    assert "Running stage 'train'" not in again.log
    assert again.outputs()["created"] == "false" and again.outputs()["version"] == "1"
    assert len(registry(team).search_model_versions(f"name = '{MODEL}'")) == 1


def test_the_weekly_schedule_takes_the_same_path(
    again: ActRun, act: Act, team: dict[str, Path]
) -> None:
    run = run_train(act, team, "schedule", "train-schedule")
    assert "Stage 'train' is cached - skipping run" in run.log
    assert run.outputs()["created"] == "false" and run.outputs()["version"] == "1"
    assert len(registry(team).search_model_versions(f"name = '{MODEL}'")) == 1
