"""TerraformRouter against a stand-in `terraform` executable.

The stand-in (tests/fixtures/terraform_standin/) exists because the environments need the
kubernetes provider and a cluster, which this machine cannot reach (no provider registry, no
cluster); GitHub Actions runs the real terraform. It records what it was asked to do, so these
tests assert the exact terraform calls and the desired state each apply saw, on copies of the
real env folders. test_terraform_binary.py runs the router with the real binary offline.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from modelops.deploy.gitops import TrafficSplit, read_state
from modelops.deploy.router import (
    CommandResult,
    Router,
    RouterError,
    TerraformRouter,
    run_command,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
STANDIN = REPO_ROOT / "tests" / "fixtures" / "terraform_standin" / "terraform"
STABLE = "ghcr.io/acme/credit-model@sha256:" + "1" * 64
CANARY = "ghcr.io/acme/credit-model@sha256:" + "2" * 64


@pytest.fixture
def env_dir(tmp_path: Path) -> Path:
    """A copy of the real staging environment (its .tf files and committed desired state)."""
    dest = tmp_path / "envs" / "staging"
    shutil.copytree(REPO_ROOT / "infra" / "terraform" / "envs" / "staging", dest)
    return dest


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "terraform-calls.jsonl"
    monkeypatch.setenv("TERRAFORM_STANDIN_LOG", str(log))
    monkeypatch.delenv("TERRAFORM_STANDIN_FAIL", raising=False)
    monkeypatch.delenv("TERRAFORM_STANDIN_SLEEP", raising=False)
    return log


def recorded(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def router(env_dir: Path, **kwargs: object) -> TerraformRouter:
    return TerraformRouter(env_dir, terraform=str(STANDIN), **kwargs)  # type: ignore[arg-type]


def test_it_is_a_router(env_dir: Path) -> None:
    assert isinstance(router(env_dir), Router)


def test_apply_writes_the_state_then_runs_init_once_and_apply(env_dir: Path, calls: Path) -> None:
    r = router(env_dir)
    step1 = TrafficSplit(STABLE, "3", CANARY, "4", 10)
    step2 = TrafficSplit(STABLE, "3", CANARY, "4", 50)
    r.apply(step1)
    r.apply(step2)

    made = recorded(calls)
    assert [c["command"] for c in made] == ["init", "apply", "apply"]
    assert made[0]["argv"] == [f"-chdir={env_dir}", "init", "-input=false", "-no-color"]
    assert made[1]["argv"] == [
        f"-chdir={env_dir}",
        "apply",
        "-input=false",
        "-auto-approve",
        "-no-color",
        "-lock-timeout=5m",
    ]
    assert {c["chdir"] for c in made} == {str(env_dir)}
    assert {c["tf_in_automation"] for c in made} == {"1"}
    # What terraform would have applied, read from the env folder at apply time.
    assert made[1]["tfvars"] == step1.to_json()
    assert made[2]["tfvars"] == step2.to_json()
    assert r.current() == step2 == read_state(env_dir)


def test_promotion_and_rollback_shapes_reach_terraform(env_dir: Path, calls: Path) -> None:
    r = router(env_dir)
    r.apply(TrafficSplit(CANARY, "4"))  # promoted: the canary image is now stable, no canary
    assert recorded(calls)[-1]["tfvars"] == {
        "stable_image": CANARY,
        "stable_model_version": "4",
        "canary_image": None,
        "canary_model_version": None,
        "canary_weight": 0,
        "canary_mirror_percent": 0,
    }


def test_backend_hcl_is_passed_to_init_when_present(env_dir: Path, calls: Path) -> None:
    shutil.copy(env_dir / "backend.hcl.example", env_dir / "backend.hcl")
    router(env_dir).apply(TrafficSplit(STABLE, "1"))
    assert recorded(calls)[0]["argv"][-1] == "-backend-config=backend.hcl"


def test_failed_apply_restores_the_previous_file_byte_for_byte(
    env_dir: Path, calls: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = env_dir / "deploy.auto.tfvars.json"
    before = state.read_bytes()
    monkeypatch.setenv("TERRAFORM_STANDIN_FAIL", "apply")
    with pytest.raises(RouterError) as caught:
        router(env_dir).apply(TrafficSplit(STABLE, "3", CANARY, "4", 10))
    message = str(caught.value)
    assert "terraform apply" in message and "failed (exit 1)" in message
    assert "restored" in message
    assert "Waiting for rollout to finish: 1 replicas wanted; 0 replicas Ready" in message
    # terraform did see the new state, and afterwards the old one is back, unchanged.
    assert recorded(calls)[-1]["tfvars"]["canary_weight"] == 10
    assert state.read_bytes() == before
    assert sorted(p.name for p in env_dir.iterdir() if p.name.startswith(".deploy")) == []


def test_failed_init_restores_and_the_next_apply_initialises_again(
    env_dir: Path, calls: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = env_dir / "deploy.auto.tfvars.json"
    before = state.read_bytes()
    r = router(env_dir)
    monkeypatch.setenv("TERRAFORM_STANDIN_FAIL", "init")
    with pytest.raises(RouterError, match=r"terraform init .* failed[\s\S]*does not exist"):
        r.apply(TrafficSplit(STABLE, "2"))
    assert state.read_bytes() == before
    assert [c["command"] for c in recorded(calls)] == ["init"]

    monkeypatch.delenv("TERRAFORM_STANDIN_FAIL")
    r.apply(TrafficSplit(STABLE, "2"))
    assert [c["command"] for c in recorded(calls)] == ["init", "init", "apply"]
    assert r.current() == TrafficSplit(STABLE, "2")


def test_failed_apply_without_a_previous_file_leaves_none(
    env_dir: Path, calls: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (env_dir / "deploy.auto.tfvars.json").unlink()
    monkeypatch.setenv("TERRAFORM_STANDIN_FAIL", "apply")
    with pytest.raises(RouterError):
        router(env_dir).apply(TrafficSplit(STABLE, "1"))
    assert not (env_dir / "deploy.auto.tfvars.json").exists()


def test_invalid_splits_never_reach_the_file_or_terraform(env_dir: Path, calls: Path) -> None:
    before = (env_dir / "deploy.auto.tfvars.json").read_bytes()
    r = router(env_dir)
    with pytest.raises(RouterError, match="canary_weight 30 needs a canary_image"):
        r.apply(TrafficSplit(STABLE, "1", None, None, 30))
    with pytest.raises(RouterError, match="takes a TrafficSplit"):
        r.apply({"stable_image": STABLE})  # type: ignore[arg-type]
    assert recorded(calls) == []
    assert (env_dir / "deploy.auto.tfvars.json").read_bytes() == before


def test_missing_terraform_binary_is_a_clear_error_and_restores(env_dir: Path, calls: Path) -> None:
    before = (env_dir / "deploy.auto.tfvars.json").read_bytes()
    r = TerraformRouter(env_dir, terraform=str(env_dir / "no-such-terraform"))
    with pytest.raises(RouterError, match=r"cannot run .*hashicorp/setup-terraform"):
        r.apply(TrafficSplit(STABLE, "9"))
    assert (env_dir / "deploy.auto.tfvars.json").read_bytes() == before


def test_a_slow_apply_is_interrupted_with_sigint_and_restores(
    env_dir: Path, calls: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = (env_dir / "deploy.auto.tfvars.json").read_bytes()
    monkeypatch.setenv("TERRAFORM_STANDIN_SLEEP", "60")
    r = router(env_dir, timeout_s=3.0)
    started = time.monotonic()
    with pytest.raises(RouterError, match=r"did not finish within 3s[\s\S]*Gracefully shutting"):
        r.apply(TrafficSplit(STABLE, "5", CANARY, "6", 10))
    assert time.monotonic() - started < 30
    assert recorded(calls)[-1] == {"command": "apply", "event": "interrupted"}
    assert (env_dir / "deploy.auto.tfvars.json").read_bytes() == before


def test_the_stand_in_rejects_flags_terraform_does_not_know(env_dir: Path, calls: Path) -> None:
    """Guards the stand-in itself: a misspelt flag fails as it would with real terraform."""
    result = run_command(
        [str(STANDIN), f"-chdir={env_dir}", "apply", "-auto_approve"],
        env={"TERRAFORM_STANDIN_LOG": str(calls), "PATH": "/usr/bin:/bin"},
        timeout_s=30,
    )
    assert result.returncode == 1
    assert "flag provided but not defined: -auto_approve" in result.stderr


def test_run_command_captures_output_and_exit_code(tmp_path: Path) -> None:
    result = run_command(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"], env={}, timeout_s=30)
    assert result == CommandResult(3, "out\n", "err\n")


def test_an_env_folder_without_terraform_files_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RouterError, match="not a terraform environment"):
        TerraformRouter(tmp_path)


def test_current_reads_the_committed_state(env_dir: Path) -> None:
    committed = json.loads((env_dir / "deploy.auto.tfvars.json").read_text())
    assert router(env_dir).current().to_json() == committed
