"""The registry side of a canary on a real MLflow registry (SQLite store in a temp folder).

Promote, reject and record images through RegistryPromoter; `modelops rollback` and
`modelops tag-image` as subprocesses. The rollback's router is the real TerraformRouter on a
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

import mlflow
import pytest
from mlflow import MlflowClient

from modelops import registry
from modelops.config import Params
from modelops.deploy.controller import Phase, Release, run_canary
from modelops.deploy.gitops import TrafficSplit, read_state
from modelops.deploy.promoter import Promoter, RegistryPromoter, rollback_champion
from modelops.deploy.router import TerraformRouter
from modelops.errors import RegistryError, RouterError
from tests.fixtures.canary_fakes import FakeClock, FakeMetrics, FakeRouter

REPO_ROOT = Path(__file__).resolve().parents[2]
STANDIN = REPO_ROOT / "tests" / "fixtures" / "terraform_standin" / "terraform"
MODELOPS = Path(sys.executable).parent / "modelops"


def image(n: int) -> str:
    return f"ghcr.io/acme/credit-model@sha256:{n:064x}"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One SQLite registry for the module (creating it takes seconds); tests use own names."""
    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    # A session fixture (trained_model) may have pinned mlflow's process-wide URI, which wins
    # over the environment: pin ours for this module, then put the previous one back.
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_ARTIFACT_ROOT", str(root / "mlartifacts"))
        mlflow.set_tracking_uri(uri)
        try:
            (root / "model").mkdir()
            MlflowClient().search_registered_models()  # creates the schema once
            yield uri
        finally:
            mlflow.set_tracking_uri(previous)  # None: back to the environment


@pytest.fixture
def model(store: str, request: pytest.FixtureRequest) -> str:
    """A registered model with versions 1..3, named after the test."""
    name = "m-" + request.node.name.replace("[", "-").replace("]", "")
    client = MlflowClient()
    client.create_registered_model(name)
    source = Path(store.removeprefix("sqlite:///")).parent / "model"
    for _ in range(3):
        client.create_model_version(name, source=str(source))
    return name


@pytest.fixture
def env_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the real staging environment, applied by the terraform stand-in."""
    dest = tmp_path / "envs" / "staging"
    shutil.copytree(REPO_ROOT / "infra" / "terraform" / "envs" / "staging", dest)
    monkeypatch.setenv("TERRAFORM_STANDIN_LOG", str(tmp_path / "terraform-calls.jsonl"))
    monkeypatch.delenv("TERRAFORM_STANDIN_FAIL", raising=False)
    return dest


def champion(name: str) -> str | None:
    ref = registry.version_by_alias(name, registry.CHAMPION)
    return None if ref is None else ref.version


def tags(name: str, version: str) -> dict[str, str]:
    return registry.version_tags(name, version)


def test_registry_promoter_is_a_promoter() -> None:
    assert isinstance(RegistryPromoter(), Promoter)


def test_promote_moves_champion_and_chains_previous_champions(model: str) -> None:
    promoter = RegistryPromoter(clock=lambda: 1_800_000_000.0)
    promoter.promote(model, "1")
    assert champion(model) == "1"
    assert registry.PREVIOUS_CHAMPION not in tags(model, "1")  # first deploy
    assert tags(model, "1")["promoted_at"] == "2027-01-15T08:00:00Z"
    promoter.promote(model, "2")
    promoter.promote(model, "3")
    assert champion(model) == "3"
    assert tags(model, "3")[registry.PREVIOUS_CHAMPION] == "2"
    assert tags(model, "2")[registry.PREVIOUS_CHAMPION] == "1"
    promoter.promote(model, "3")  # again (a resumed controller): nothing changes
    assert tags(model, "3")[registry.PREVIOUS_CHAMPION] == "2"


def test_reject_tags_the_reason_and_leaves_champion(model: str) -> None:
    promoter = RegistryPromoter()
    promoter.promote(model, "1")
    promoter.reject(model, "2", "at 5%: error_rate failed 2 times")
    assert tags(model, "2")[registry.REJECTED] == "at 5%: error_rate failed 2 times"
    assert "rejected_at" in tags(model, "2")
    assert champion(model) == "1"


def test_unknown_version_is_a_clear_error(model: str) -> None:
    with pytest.raises(RegistryError, match=f"models:/{model}/9 is not in the registry"):
        RegistryPromoter().promote(model, "9")
    assert champion(model) is None


def test_record_image(model: str) -> None:
    RegistryPromoter().record_image(model, "2", image(2))
    assert tags(model, "2")[registry.IMAGE] == image(2)


def test_rollback_goes_back_one_champion_at_a_time(model: str, env_dir: Path) -> None:
    promoter = RegistryPromoter()
    for version in ("1", "2", "3"):
        promoter.record_image(model, version, image(int(version)))
        promoter.promote(model, version)
    router = TerraformRouter(env_dir, terraform=str(STANDIN))
    router.apply(TrafficSplit(image(3), "3"))

    result = rollback_champion(model, router, "p99 regression seen by users")
    assert (result.from_version, result.to_version, result.image) == ("3", "2", image(2))
    assert champion(model) == "2"
    assert read_state(env_dir) == TrafficSplit(image(2), "2")
    assert tags(model, "3")["rolled_back"] == "p99 regression seen by users"

    rollback_champion(model, router, "again")
    assert champion(model) == "1"
    assert read_state(env_dir) == TrafficSplit(image(1), "1")

    with pytest.raises(RegistryError, match="has no previous champion recorded"):
        rollback_champion(model, router, "once more")
    assert champion(model) == "1" and read_state(env_dir) == TrafficSplit(image(1), "1")


def test_rollback_without_the_image_refuses_and_moves_nothing(model: str, env_dir: Path) -> None:
    promoter = RegistryPromoter()
    promoter.promote(model, "1")  # deployed before images were recorded
    promoter.promote(model, "2")
    before = (env_dir / "deploy.auto.tfvars.json").read_bytes()
    router = TerraformRouter(env_dir, terraform=str(STANDIN))
    with pytest.raises(RegistryError, match=r"has no 'image' tag.*modelops tag-image --version 1"):
        rollback_champion(model, router, "x")
    assert champion(model) == "2"
    assert (env_dir / "deploy.auto.tfvars.json").read_bytes() == before


def test_rollback_with_a_failing_router_leaves_champion(
    model: str, env_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    promoter = RegistryPromoter()
    for version in ("1", "2"):
        promoter.record_image(model, version, image(int(version)))
        promoter.promote(model, version)
    before = (env_dir / "deploy.auto.tfvars.json").read_bytes()
    monkeypatch.setenv("TERRAFORM_STANDIN_FAIL", "apply")
    with pytest.raises(RouterError, match="terraform apply"):
        rollback_champion(model, TerraformRouter(env_dir, terraform=str(STANDIN)), "x")
    assert champion(model) == "2"
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


def test_cli_tag_image_and_rollback(model: str, env_dir: Path, tmp_path: Path) -> None:
    promoter = RegistryPromoter()
    promoter.record_image(model, "2", image(2))
    promoter.promote(model, "1")
    promoter.promote(model, "2")

    refused = cli("rollback", "--env-dir", str(env_dir), "--model-name", model,
                  "--terraform", str(STANDIN), cwd=tmp_path)  # fmt: skip
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: ") and "modelops tag-image" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (tmp_path / "terraform-calls.jsonl").exists()  # refused before terraform

    bad = cli("tag-image", "--model-name", model, "--version", "1", "--image", "model:1",
              cwd=tmp_path)  # fmt: skip
    assert bad.returncode == 1 and "not pinned by digest" in bad.stderr

    tagged = cli("tag-image", "--model-name", model, "--version", "1", "--image", image(1),
                 cwd=tmp_path)  # fmt: skip
    assert tagged.returncode == 0, tagged.stderr

    done = cli("rollback", "--env-dir", str(env_dir), "--model-name", model,
               "--terraform", str(STANDIN), "--reason", "bad on Mondays", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "champion 2 -> 1" in done.stdout
    assert champion(model) == "1"
    assert read_state(env_dir) == TrafficSplit(image(1), "1")
    applied = [json.loads(line) for line in (tmp_path / "terraform-calls.jsonl").open()]
    assert [c["command"] for c in applied] == ["init", "apply"]
    assert applied[-1]["tfvars"]["stable_image"] == image(1)
    assert tags(model, "2")["rolled_back"] == "bad on Mondays"


# The controller on the real registry ------------------------------------------------------


@pytest.fixture
def fast(params: Params) -> Params:
    canary = params.canary.model_copy(
        update={"interval_seconds": 5.0, "progress_deadline_seconds": 20.0}
    )
    return params.model_copy(update={"canary": canary})


def test_canary_outcomes_in_the_registry(model: str, fast: Params, tmp_path: Path) -> None:
    promoter = RegistryPromoter()
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
    assert champion(model) == "1"
    assert tags(model, "2")[registry.REJECTED] == failed.reason
    assert tags(model, "2")[registry.IMAGE] == image(2)
    assert router.live == TrafficSplit(image(1), "1")

    passed = run_canary(Release(model, "3", image(3), "1", image(1)), router, FakeMetrics(),
                        promoter, fast, "staging", tmp_path / "r3", **options)  # fmt: skip
    assert passed.promoted
    assert champion(model) == "3"
    assert tags(model, "3")[registry.PREVIOUS_CHAMPION] == "1"
    assert tags(model, "3")[registry.IMAGE] == image(3)
    assert router.live == TrafficSplit(image(3), "3")
