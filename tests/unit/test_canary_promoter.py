"""The registry side of a canary on a real MLflow registry (SQLite store in a temp folder).

Promote, reject and record images through RegistryPromoter; `modelops deploy rollback` and
`modelops deploy tag-image` as subprocesses. The rollback's router is the real TerraformRouter on a
copy of infra/terraform/envs/staging, running the terraform stand-in (tests/fixtures/
terraform_standin: no cluster and no provider registry here; the deploy workflow runs the
real binary). The controller runs against this registry with in-memory traffic and metrics
(tests/fixtures/canary_fakes.py) to check what a canary leaves in the registry.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelops.config import Params
from modelops.deploy.controller import Phase, Release, run_canary
from modelops.deploy.gitops import TrafficSplit, read_state
from modelops.deploy.promoter import Promoter, RegistryPromoter, rollback_champion
from modelops.deploy.router import TerraformRouter
from modelops.errors import RegistryError, RouterError
from modelops.registry.client import (
    CHAMPION,
    IMAGE,
    PREVIOUS_CHAMPION,
    REJECTED,
    RegistryClient,
)
from tests.fixtures.canary_fakes import FakeClock, FakeMetrics, FakeRouter

REPO_ROOT = Path(__file__).resolve().parents[2]
STANDIN = REPO_ROOT / "tests" / "fixtures" / "terraform_standin" / "terraform"
MODELOPS = Path(sys.executable).parent / "modelops"


def image(n: int) -> str:
    return f"ghcr.io/acme/credit-model@sha256:{n:064x}"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryClient]:
    """One SQLite registry for the module (creating it takes seconds); tests use own names.
    The CLI subprocesses find it through MLFLOW_TRACKING_URI."""
    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("MLFLOW_ARTIFACT_ROOT", str(root / "mlartifacts"))
        (root / "model").mkdir()
        client = RegistryClient(uri)
        client.mlflow.search_registered_models()  # creates the schema once
        yield client


@pytest.fixture
def model(store: RegistryClient, request: pytest.FixtureRequest) -> str:
    """A registered model with versions 1..3, named after the test."""
    name = "m-" + request.node.name.replace("[", "-").replace("]", "")
    store.mlflow.create_registered_model(name)
    source = Path(store.tracking_uri.removeprefix("sqlite:///")).parent / "model"
    for _ in range(3):
        store.mlflow.create_model_version(name, source=str(source))
    return name


@pytest.fixture
def env_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the real staging environment, applied by the terraform stand-in."""
    dest = tmp_path / "envs" / "staging"
    shutil.copytree(REPO_ROOT / "infra" / "terraform" / "envs" / "staging", dest)
    monkeypatch.setenv("TERRAFORM_STANDIN_LOG", str(tmp_path / "terraform-calls.jsonl"))
    monkeypatch.delenv("TERRAFORM_STANDIN_FAIL", raising=False)
    return dest


def champion(store: RegistryClient, name: str) -> str | None:
    ref = store.version_by_alias(name, CHAMPION)
    return None if ref is None else ref.version


def tags(store: RegistryClient, name: str, version: str) -> dict[str, str]:
    return store.version_tags(name, version)


def test_registry_promoter_is_a_promoter(store: RegistryClient) -> None:
    assert isinstance(RegistryPromoter(store), Promoter)


def test_promote_moves_champion_and_chains_previous_champions(
    store: RegistryClient, model: str
) -> None:
    promoter = RegistryPromoter(store, clock=lambda: 1_800_000_000.0)
    promoter.promote(model, "1")
    assert champion(store, model) == "1"
    assert PREVIOUS_CHAMPION not in tags(store, model, "1")  # first deploy
    assert tags(store, model, "1")["promoted_at"] == "2027-01-15T08:00:00Z"
    promoter.promote(model, "2")
    promoter.promote(model, "3")
    assert champion(store, model) == "3"
    assert tags(store, model, "3")[PREVIOUS_CHAMPION] == "2"
    assert tags(store, model, "2")[PREVIOUS_CHAMPION] == "1"
    promoter.promote(model, "3")  # again (a resumed controller): nothing changes
    assert tags(store, model, "3")[PREVIOUS_CHAMPION] == "2"


def test_reject_tags_the_reason_and_leaves_champion(store: RegistryClient, model: str) -> None:
    promoter = RegistryPromoter(store)
    promoter.promote(model, "1")
    promoter.reject(model, "2", "at 5%: error_rate failed 2 times")
    assert tags(store, model, "2")[REJECTED] == "at 5%: error_rate failed 2 times"
    assert "rejected_at" in tags(store, model, "2")
    assert champion(store, model) == "1"


def test_unknown_version_is_a_clear_error(store: RegistryClient, model: str) -> None:
    with pytest.raises(RegistryError, match=f"models:/{model}/9 is not in the registry"):
        RegistryPromoter(store).promote(model, "9")
    assert champion(store, model) is None


def test_record_image(store: RegistryClient, model: str) -> None:
    RegistryPromoter(store).record_image(model, "2", image(2))
    assert tags(store, model, "2")[IMAGE] == image(2)


def test_rollback_goes_back_one_champion_at_a_time(
    store: RegistryClient, model: str, env_dir: Path
) -> None:
    promoter = RegistryPromoter(store)
    for version in ("1", "2", "3"):
        promoter.record_image(model, version, image(int(version)))
        promoter.promote(model, version)
    router = TerraformRouter(env_dir, terraform=str(STANDIN))
    router.apply(TrafficSplit(image(3), "3"))

    result = rollback_champion(store, model, router, "p99 regression seen by users")
    assert (result.from_version, result.to_version, result.image) == ("3", "2", image(2))
    assert champion(store, model) == "2"
    assert read_state(env_dir) == TrafficSplit(image(2), "2")
    assert tags(store, model, "3")["rolled_back"] == "p99 regression seen by users"

    rollback_champion(store, model, router, "again")
    assert champion(store, model) == "1"
    assert read_state(env_dir) == TrafficSplit(image(1), "1")

    with pytest.raises(RegistryError, match="has no previous champion recorded"):
        rollback_champion(store, model, router, "once more")
    assert champion(store, model) == "1" and read_state(env_dir) == TrafficSplit(image(1), "1")


def test_rollback_without_the_image_refuses_and_moves_nothing(
    store: RegistryClient, model: str, env_dir: Path
) -> None:
    promoter = RegistryPromoter(store)
    promoter.promote(model, "1")  # deployed before images were recorded
    promoter.promote(model, "2")
    before = (env_dir / "deploy.auto.tfvars.json").read_bytes()
    router = TerraformRouter(env_dir, terraform=str(STANDIN))
    with pytest.raises(
        RegistryError, match=r"has no 'image' tag.*modelops deploy tag-image --version 1"
    ):
        rollback_champion(store, model, router, "x")
    assert champion(store, model) == "2"
    assert (env_dir / "deploy.auto.tfvars.json").read_bytes() == before


def test_rollback_with_a_failing_router_leaves_champion(
    store: RegistryClient, model: str, env_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    promoter = RegistryPromoter(store)
    for version in ("1", "2"):
        promoter.record_image(model, version, image(int(version)))
        promoter.promote(model, version)
    before = (env_dir / "deploy.auto.tfvars.json").read_bytes()
    monkeypatch.setenv("TERRAFORM_STANDIN_FAIL", "apply")
    with pytest.raises(RouterError, match="terraform apply"):
        rollback_champion(store, model, TerraformRouter(env_dir, terraform=str(STANDIN)), "x")
    assert champion(store, model) == "2"
    assert (env_dir / "deploy.auto.tfvars.json").read_bytes() == before


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MODELOPS), *args, "--params", str(REPO_ROOT / "params.yaml")],
        cwd=cwd,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_tag_image_and_rollback(
    store: RegistryClient, model: str, env_dir: Path, tmp_path: Path
) -> None:
    promoter = RegistryPromoter(store)
    promoter.record_image(model, "2", image(2))
    promoter.promote(model, "1")
    promoter.promote(model, "2")

    refused = cli("deploy", "rollback", "--env-dir", str(env_dir), "--model-name", model,
                  "--terraform", str(STANDIN), cwd=tmp_path)  # fmt: skip
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: ") and "modelops deploy tag-image" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (tmp_path / "terraform-calls.jsonl").exists()  # refused before terraform

    bad = cli("deploy", "tag-image", "--model-name", model, "--version", "1", "--image", "model:1",
              cwd=tmp_path)  # fmt: skip
    assert bad.returncode == 1 and "not pinned by digest" in bad.stderr

    tagged = cli("deploy", "tag-image", "--model-name", model, "--version", "1",
                 "--image", image(1), cwd=tmp_path)  # fmt: skip
    assert tagged.returncode == 0, tagged.stderr

    done = cli("deploy", "rollback", "--env-dir", str(env_dir), "--model-name", model,
               "--terraform", str(STANDIN), "--reason", "bad on Mondays", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "champion 2 -> 1" in done.stdout
    assert champion(store, model) == "1"
    assert read_state(env_dir) == TrafficSplit(image(1), "1")
    applied = [json.loads(line) for line in (tmp_path / "terraform-calls.jsonl").open()]
    assert [c["command"] for c in applied] == ["init", "apply"]
    assert applied[-1]["tfvars"]["stable_image"] == image(1)
    assert tags(store, model, "2")["rolled_back"] == "bad on Mondays"


# The controller on the real registry ------------------------------------------------------


@pytest.fixture
def fast(params: Params) -> Params:
    canary = params.canary.model_copy(
        update={"interval_seconds": 5.0, "progress_deadline_seconds": 20.0}
    )
    return params.model_copy(update={"canary": canary})


def test_canary_outcomes_in_the_registry(
    store: RegistryClient, model: str, fast: Params, tmp_path: Path
) -> None:
    promoter = RegistryPromoter(store)
    promoter.record_image(model, "1", image(1))
    promoter.promote(model, "1")
    router = FakeRouter(live=TrafficSplit(image(1), "1"))
    clock = FakeClock()
    options = {"sleep": clock.sleep, "clock": clock, "plot": False}

    bad = FakeMetrics()
    bad.tracks["canary"].errors = 100.0
    failed = run_canary(Release(model, "2", image(2), "1", image(1)), router, bad, promoter,
                        fast, "staging", tmp_path / "r2", **options)  # fmt: skip
    assert failed.phase == Phase.FAILED
    assert champion(store, model) == "1"
    assert tags(store, model, "2")[REJECTED] == failed.reason
    assert tags(store, model, "2")[IMAGE] == image(2)
    assert router.live == TrafficSplit(image(1), "1")

    passed = run_canary(Release(model, "3", image(3), "1", image(1)), router, FakeMetrics(),
                        promoter, fast, "staging", tmp_path / "r3", **options)  # fmt: skip
    assert passed.promoted
    assert champion(store, model) == "3"
    assert tags(store, model, "3")[PREVIOUS_CHAMPION] == "1"
    assert tags(store, model, "3")[IMAGE] == image(3)
    assert router.live == TrafficSplit(image(3), "3")
