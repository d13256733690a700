"""deploy.yml's canary in staging, run for real with act against the local rehearsal.

The staging "cluster" is the canary rehearsal of this repository (src/modelops/deploy/local):
real model services for the stable and the canary track, nginx splitting traffic by weight,
a Prometheus scraping both with `env="staging"`, and real load through nginx for the whole
run. The workflow runs unchanged: it exports the version from a real MLflow registry, builds
and pushes the image for real (podman, to a local docker-registry; the build-push stand-in),
and `make deploy-canary` runs the controller with TerraformRouter on the digest the registry
returned; the only stand-in there is `terraform`, which applies each step's weights to the
rehearsal's nginx, routing the pushed image to the rehearsal's service of the model it holds
(no cluster and no provider registry here; its header says more). The GitOps commit goes
to the team's `origin`, a local bare repository standing in for GitHub.

A good challenger is promoted (champion moves, staging serves it, the GitOps file says so);
a challenger that fails on part of the inputs is rolled back (champion unmoved, tagged
rejected, staging back on stable, the GitOps file unchanged, an issue with the analysis).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from mlflow import MlflowClient

from modelops.deploy.engine import Engine
from modelops.deploy.gitops import TrafficSplit, read_state, write_state
from modelops.deploy.local.env import LocalEnv
from modelops.deploy.local.loadgen import LoadGenerator, records_from_table
from tests.conftest import REPO_ROOT
from tests.fixtures.actions.harness import Act, ActRun, act_project, event_payload, git
from tests.fixtures.images import (  # noqa: F401 (fixtures)
    act_build_env,
    base_image,
    container_engine,
    container_registry,
)
from tests.fixtures.team_registry import MODEL, registry_for_canary

pytestmark = pytest.mark.e2e
TERRAFORM = REPO_ROOT / "tests/fixtures/terraform_standin/terraform"
STAGING = "infra/terraform/envs/staging"
CANARY = {
    "steps": [10, 50, 100],
    "interval_seconds": 5,
    "min_requests": 10,
    "min_score_rows": 400,
    "failure_threshold": 2,
    "progress_deadline_seconds": 40,
    "rollback_retry_seconds": 1,
}
PICKLED = {"MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true"}  # the failing challenger's step
_START = """\
import sys
from pathlib import Path
from modelops.deploy.local.env import LocalEnv
LocalEnv.start(Path(sys.argv[1]), stable=sys.argv[2], canary=sys.argv[3], env_label="staging",
               service_env={"MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true"})
"""


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory, trained_model: dict[str, Any]) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("deploy-canary")
    store = root / "team/mlflow.db"
    versions = registry_for_canary(trained_model, store)
    origin = root / "team/origin.git"
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
    return {
        "root": root,
        "store": store,
        "uri": f"sqlite:///{store}",
        "versions": versions,
        "origin": origin,
        "rows": Path(trained_model["root"]) / "test.parquet",
    }


@pytest.fixture(scope="module")
def act(team: dict[str, Any]) -> Act:
    """The project with short canary settings, its main pushed to the team's origin."""
    repo = act_project(team["root"] / "repo", team["root"] / "team/dvc-remote")
    raw = yaml.safe_load((repo / "params.yaml").read_text())
    raw["canary"].update(CANARY)
    (repo / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    git(repo, "commit", "-qam", "Short canary steps for the rehearsal")
    git(repo, "remote", "set-url", "--push", "origin", str(team["origin"]))
    return Act(repo, team["root"])


@pytest.fixture(scope="module")
def build_env(
    container_engine: Engine,  # noqa: F811
    base_image: str,  # noqa: F811
    container_registry: str,  # noqa: F811
) -> dict[str, str]:
    """The build-push stand-in's settings; IMAGE_NAME points at the test's registry."""
    return {
        **act_build_env(container_engine, base_image),
        "IMAGE_NAME": f"{container_registry}/acme/credit-scoring",
    }


@pytest.fixture(scope="module")
def rehearsals(team: dict[str, Any]) -> Iterator[list[Path]]:
    started: list[Path] = []
    yield started
    for run_dir in started:
        if (run_dir / "env.json").is_file():
            LocalEnv.load(run_dir).stop()


def deploy(
    act: Act,
    team: dict[str, Any],
    rehearsals: list[Path],
    role: str,
    stable: str,
    ask: str,
    build_env: dict[str, str],
) -> tuple[ActRun, LocalEnv]:
    """Staging runs `stable`; dispatch deploy.yml for `ask` (the version of `role`), under
    load."""
    version = team["versions"][role]
    run_dir = team["root"] / f"rehearsal-{role}"
    rehearsals.append(run_dir)
    subprocess.run(
        [sys.executable, "-c", _START, str(run_dir), f"models:/{MODEL}/{stable}",
         f"models:/{MODEL}/{version}"],
        cwd=act.repo,
        env={**os.environ, "MLFLOW_TRACKING_URI": team["uri"], **PICKLED},
        check=True,
        capture_output=True,
        text=True,
    )  # fmt: skip
    env = LocalEnv.load(run_dir)
    # What staging serves now is what main says, as the previous deploy committed it.
    if git(act.repo, "ls-remote", str(team["origin"]), "main"):
        git(act.repo, "pull", "-q", "--ff-only", str(team["origin"]), "main")
    live = env.services["stable"]
    state = TrafficSplit(live.image, live.model_version)
    if read_state(act.repo / STAGING) != state:
        write_state(act.repo / STAGING, state)
        git(act.repo, "commit", "-qam", f"gitops(staging): stable model version {stable}")
    git(act.repo, "push", "-q", "origin", "HEAD:refs/heads/main")
    columns = list(json.loads((Path(live.model_dir) / "input_example.json").read_text())["columns"])
    with LoadGenerator(env.url, records_from_table(team["rows"], columns), rps=40, batch=25):
        run = act.run(
            "workflow_dispatch",
            event_payload("workflow_dispatch", inputs={"model_version": ask}),
            "deploy.yml",
            "staging",
            variables={
                "MLFLOW_TRACKING_URI": team["uri"],
                "PROMETHEUS_URL": env.prometheus_url,
                "IMAGE_NAME": build_env["IMAGE_NAME"],
            },
            secrets={"GITHUB_TOKEN": "test-token"},
            env={
                **{k: v for k, v in build_env.items() if k != "IMAGE_NAME"},
                "ACT_TERRAFORM": str(TERRAFORM),
                "TERRAFORM_STANDIN_REHEARSAL": str(run_dir),
                "TERRAFORM_STANDIN_LOG": str(run_dir / "terraform.jsonl"),
            },
            label=f"deploy-{role}",
        )
    return run, env


def registry(team: dict[str, Any]) -> MlflowClient:
    return MlflowClient(tracking_uri=team["uri"])


@pytest.fixture(scope="module")
def promoted(
    act: Act, team: dict[str, Any], rehearsals: list[Path], build_env: dict[str, str]
) -> tuple[ActRun, LocalEnv]:
    good = team["versions"]["good"]
    return deploy(act, team, rehearsals, "good", team["versions"]["champion"], good, build_env)


def test_a_good_challenger_is_promoted_and_committed(
    promoted: tuple[ActRun, LocalEnv], act: Act, team: dict[str, Any], build_env: dict[str, str]
) -> None:
    run, env = promoted
    assert run.jobs() == {
        "plan": "succeeded",
        "image": "succeeded",
        "staging": "succeeded",
    }, run.log[-6000:]
    good = team["versions"]["good"]
    digest = run.outputs()["digest"]
    image = f"{build_env['IMAGE_NAME']}@{digest}"
    # The canary deployed the digest the registry returned for the pushed tags ...
    host, repository = build_env["IMAGE_NAME"].split("/", 1)
    answer = httpx.head(
        f"http://{host}/v2/{repository}/manifests/{MODEL}-v{good}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    assert answer.headers.get("Docker-Content-Digest") == digest
    applied = [
        json.loads(line) for line in (env.run_dir / "terraform.jsonl").read_text().splitlines()
    ]
    canaries = {e["tfvars"].get("canary_image") for e in applied if e["command"] == "apply"}
    assert image in canaries
    assert str(registry(team).get_model_version_by_alias(MODEL, "champion").version) == good
    # Staging serves the new version only, and main records exactly that.
    assert env.router.current().stable_model_version == good
    assert env.router.current().canary_weight == 0
    committed = json.loads(git(team["origin"], "show", f"main:{STAGING}/deploy.auto.tfvars.json"))
    assert committed == TrafficSplit(image, good).to_json()
    subject = git(team["origin"], "log", "-1", "--format=%s", "main")
    assert (
        subject
        == f"gitops(staging): stable model version {good} at 100% (canary of model version {good})"
    )
    # The analysis is the job summary; no issue was opened.
    assert f"Summary - ## Canary of {MODEL} version {good} in staging: PROMOTED" in run.log
    assert act.github_state().get("issues", []) == []


def test_a_failing_challenger_is_rolled_back_with_an_issue(
    promoted: tuple[ActRun, LocalEnv],
    act: Act,
    team: dict[str, Any],
    rehearsals: list[Path],
    build_env: dict[str, str],
) -> None:
    good, failing = team["versions"]["good"], team["versions"]["failing"]
    run, env = deploy(act, team, rehearsals, "failing", good, failing, build_env)
    assert run.jobs() == {
        "plan": "succeeded",
        "image": "succeeded",
        "staging": "failed",
    }, run.log[-6000:]
    client = registry(team)
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == good
    assert client.get_model_version(MODEL, failing).tags["rejected"]
    live = env.router.current()
    assert (live.stable_model_version, live.canary_image, live.canary_weight) == (good, None, 0)
    # Nothing changed in staging's desired state: no GitOps commit after the one that set up
    # this run (the rehearsal's stable image).
    subject = git(team["origin"], "log", "-1", "--format=%s", "main")
    assert subject == f"gitops(staging): stable model version {good}"
    committed = json.loads(git(team["origin"], "show", f"main:{STAGING}/deploy.auto.tfvars.json"))
    assert committed == TrafficSplit(env.services["stable"].image, good).to_json()
    issues = act.github_state()["issues"]
    assert [i["title"] for i in issues] == [f"Canary of model version {failing} failed in staging"]
    assert issues[0]["labels"] == ["deploy-failed"]
    body = issues[0]["body"]  # the controller's analysis, the check that failed in it
    assert f"## Canary of {MODEL} version {failing} in staging: ROLLED BACK" in body
    assert "error_rate failed 2 times" in body and "| error_rate |" in body
