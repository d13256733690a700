"""deploy.yml run for real with act: which version, the image, and the canary in staging.

The team's side lives outside the throwaway repository: a SQLite MLflow registry holding a
real trained model, and the completed train run that deploy.yml follows (its
`training-report` artifact with build/registration.env, put where the download-artifact
stand-in finds another run's artifacts). No Docker daemon or registry exists here, so the
image is "built and pushed" by the build-push stand-in, which checks the build's inputs and
gives a digest of them (tests/fixtures/actions/README.md).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from modelops.deploy.local.images import folder_digest
from tests.fixtures.actions.harness import Act, ActRun, act_project, event_payload, git
from tests.fixtures.team_registry import MODEL, registry_copy

pytestmark = pytest.mark.e2e
IMAGE = re.compile(r"^ghcr\.io/acme/credit-scoring@sha256:[0-9a-f]{64}$")


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory, trained_model: dict[str, Any]) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("deploy")
    store = root / "team/mlflow.db"
    version = registry_copy(trained_model, store, ["challenger"])
    return {"root": root, "store": store, "version": version}


@pytest.fixture(scope="module")
def act(team: dict[str, Any]) -> Act:
    repo = act_project(team["root"] / "repo", team["root"] / "team/dvc-remote")
    return Act(repo, team["root"])


def train_run(act: Act, run_id: int, conclusion: str, registration: str | None) -> dict[str, Any]:
    """A completed train run: its artifact (with the registration record) and its event."""
    if registration is not None:
        folder = act.fakes / f"runs/{run_id}/artifacts/training-report/build"
        folder.mkdir(parents=True)
        (folder / "registration.env").write_text(registration)
    return event_payload(
        "workflow_run",
        **{
            "workflow_run.id": run_id,
            "workflow_run.conclusion": conclusion,
            "workflow_run.head_sha": git(act.repo, "rev-parse", "HEAD"),
        },
    )


def run_deploy(
    act: Act, team: dict[str, Any], payload: dict[str, Any], job: str, label: str
) -> ActRun:
    return act.run(
        "workflow_run",
        payload,
        "deploy.yml",
        job,
        variables={"MLFLOW_TRACKING_URI": f"sqlite:///{team['store']}"},
        secrets={"GITHUB_TOKEN": "test-token"},
        label=label,
    )


def registration(version: str, created: bool) -> str:
    return (
        f"model_name={MODEL}\nversion={version}\ncreated={str(created).lower()}\n"
        f"model_uri=models:/{MODEL}/{version}\n"
    )


@pytest.fixture(scope="module")
def built(act: Act, team: dict[str, Any]) -> ActRun:
    """A train run that registered a new version: plan, then export, build and push."""
    payload = train_run(act, 101, "success", registration(team["version"], True))
    return run_deploy(act, team, payload, "image", "deploy-image")


def test_a_registering_train_run_builds_and_pushes_the_image(
    built: ActRun, act: Act, team: dict[str, Any]
) -> None:
    assert built.jobs() == {"plan": "succeeded", "image": "succeeded"}, built.log[-4000:]
    outputs = built.outputs()
    assert outputs["created"] == "true" and outputs["version"] == team["version"]
    digest = outputs["digest"]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
    image = f"ghcr.io/acme/credit-scoring@{digest}"
    assert IMAGE.match(image)
    head = git(act.repo, "rev-parse", "HEAD")
    pushed = json.loads((act.fakes / "registry/images.json").read_text())
    assert pushed == {
        "ghcr.io/acme/credit-scoring": {
            f"{MODEL}-v{team['version']}": digest,
            f"sha-{head[:12]}": digest,
        }
    }
    blob = act.fakes / f"registry/blobs/{digest.removeprefix('sha256:')}"
    exported = json.loads((blob / "model/export.json").read_text())
    assert exported["model_name"] == MODEL and exported["model_version"] == team["version"]
    assert (blob / "model/MLmodel").is_file()
    # The digest names the model's content, as the local rehearsal names its images.
    assert digest == "sha256:" + folder_digest(blob / "model")
    args = json.loads((blob / "build-args.json").read_text())
    assert args["MODEL_VERSION"] == team["version"] and args["GIT_COMMIT"] == head
    logins = json.loads((act.fakes / "registry/logins.json").read_text())
    assert [login["registry"] for login in logins] == ["ghcr.io"]


def test_a_train_run_that_registered_nothing_deploys_nothing(
    built: ActRun, act: Act, team: dict[str, Any]
) -> None:
    payload = train_run(act, 102, "success", registration(team["version"], False))
    run = run_deploy(act, team, payload, "image", "deploy-nothing-new")
    assert run.jobs() == {"plan": "succeeded"}, run.log[-4000:]  # image and later: skipped
    assert run.outputs()["created"] == "false"


def test_a_failed_train_run_deploys_nothing(built: ActRun, act: Act, team: dict[str, Any]) -> None:
    payload = train_run(act, 103, "failure", None)
    run = run_deploy(act, team, payload, "image", "deploy-after-failure")
    assert run.returncode == 0 and run.jobs() == {}, run.log[-4000:]
