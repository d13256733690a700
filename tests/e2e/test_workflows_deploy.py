"""deploy.yml run for real with act: which version, the image, and the canary in staging.

The team's side lives outside the throwaway repository: a SQLite MLflow registry holding a
real trained model, and the completed train run that deploy.yml follows (its
`training-report` artifact with build/registration.env, put where the download-artifact
stand-in finds another run's artifacts). The image is built and pushed for real: the
build-push stand-in runs podman (no Docker daemon here) on the local base image and pushes to
a docker-registry on 127.0.0.1 that the IMAGE_NAME variable points at (GHCR is unreachable);
the digest the job outputs is the one that registry returned
(tests/fixtures/actions/README.md).
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from modelops.deploy.engine import Engine
from tests.fixtures.actions.harness import Act, ActRun, act_project, event_payload, git
from tests.fixtures.images import (  # noqa: F401 (fixtures)
    act_build_env,
    base_image,
    container_engine,
    container_registry,
)
from tests.fixtures.team_registry import MODEL, registry_copy

pytestmark = pytest.mark.e2e


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


@pytest.fixture(scope="module")
def build_env(
    container_engine: Engine,  # noqa: F811
    base_image: str,  # noqa: F811
    container_registry: str,  # noqa: F811
) -> dict[str, str]:
    return {**act_build_env(container_engine, base_image), "REGISTRY": container_registry}


def run_deploy(
    act: Act,
    team: dict[str, Any],
    payload: dict[str, Any],
    job: str,
    label: str,
    build_env: dict[str, str],
) -> ActRun:
    return act.run(
        "workflow_run",
        payload,
        "deploy.yml",
        job,
        variables={
            "MLFLOW_TRACKING_URI": f"sqlite:///{team['store']}",
            "IMAGE_NAME": f"{build_env['REGISTRY']}/acme/credit-scoring",
        },
        secrets={"GITHUB_TOKEN": "test-token"},
        env={k: v for k, v in build_env.items() if k != "REGISTRY"},
        label=label,
    )


def registration(version: str, created: bool) -> str:
    return (
        f"model_name={MODEL}\nversion={version}\ncreated={str(created).lower()}\n"
        f"model_uri=models:/{MODEL}/{version}\n"
    )


@pytest.fixture(scope="module")
def built(act: Act, team: dict[str, Any], build_env: dict[str, str]) -> ActRun:
    """A train run that registered a new version: plan, then export, build and push."""
    payload = train_run(act, 101, "success", registration(team["version"], True))
    return run_deploy(act, team, payload, "image", "deploy-image", build_env)


def test_a_registering_train_run_builds_and_pushes_the_image(
    built: ActRun,
    act: Act,
    team: dict[str, Any],
    build_env: dict[str, str],
    container_engine: Engine,  # noqa: F811
) -> None:
    assert built.jobs() == {"plan": "succeeded", "image": "succeeded"}, built.log[-4000:]
    outputs = built.outputs()
    assert outputs["created"] == "true" and outputs["version"] == team["version"]
    digest = outputs["digest"]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
    # Both tags name, in the registry, the manifest whose digest the job outputs.
    registry, head = build_env["REGISTRY"], git(act.repo, "rev-parse", "HEAD")
    for tag in (f"{MODEL}-v{team['version']}", f"sha-{head[:12]}"):
        answer = httpx.head(
            f"http://{registry}/v2/acme/credit-scoring/manifests/{tag}",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        )
        assert answer.headers.get("Docker-Content-Digest") == digest, (tag, answer.status_code)
    # The image pulled by that digest is the model version built from this commit.
    image = f"{registry}/acme/credit-scoring@{digest}"
    container_engine.pull(image, insecure=True)
    labels = container_engine.inspect(image)["Config"]["Labels"]
    assert labels["io.modelops.model.version"] == team["version"]
    assert labels["io.modelops.model.name"] == MODEL
    assert labels["org.opencontainers.image.revision"] == head
    logins = json.loads((act.fakes / "registry/logins.json").read_text())
    assert [login["registry"] for login in logins] == [registry]


def test_a_train_run_that_registered_nothing_deploys_nothing(
    built: ActRun, act: Act, team: dict[str, Any], build_env: dict[str, str]
) -> None:
    payload = train_run(act, 102, "success", registration(team["version"], False))
    run = run_deploy(act, team, payload, "image", "deploy-nothing-new", build_env)
    assert run.jobs() == {"plan": "succeeded"}, run.log[-4000:]  # image and later: skipped
    assert run.outputs()["created"] == "false"


def test_a_failed_train_run_deploys_nothing(
    built: ActRun, act: Act, team: dict[str, Any], build_env: dict[str, str]
) -> None:
    payload = train_run(act, 103, "failure", None)
    run = run_deploy(act, team, payload, "image", "deploy-after-failure", build_env)
    assert run.returncode == 0 and run.jobs() == {}, run.log[-4000:]
