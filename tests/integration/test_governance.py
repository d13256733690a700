"""Governance records on `mlflow server` + PostgreSQL: model card, receipts, approvals, history,
retirement.

One module-scoped story: `modelops register` (real training run, the pipeline's committed
reports) gives version 1 and its card; versions 2 and 3 come from the same run. Canaries run
through the real controller and the real `RegistryPromoter`, with the canary_fakes Router and
MetricProvider standing in for Terraform and Prometheus (no cluster or Prometheus here; the
canary's own tests cover those), and end at the deploy CLI's receipt call. The rollback runs
`modelops deploy rollback` with the terraform stand-in (tests/fixtures/terraform_standin).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelops.cli.deploy import _record_receipt
from modelops.cli.governance import served_versions
from modelops.config import Params, load_params
from modelops.deploy.controller import STATE_FILE, CanaryController, Outcome
from modelops.deploy.gitops import write_state
from modelops.deploy.promoter import RegistryPromoter
from modelops.deploy.state import Release
from modelops.errors import Refused, RegistryError
from modelops.registry.approvals import record_approval
from modelops.registry.client import RegistryClient
from modelops.registry.history import model_history
from modelops.registry.receipts import read_receipts
from modelops.registry.retire import retire_version
from modelops.registry.tracking import file_md5
from tests.fixtures.canary_fakes import CANARY, STABLE, FakeClock, FakeMetrics, FakeRouter, Track
from tests.integration.test_registry import gate_report

pytestmark = pytest.mark.integration

MODELOPS = str(Path(sys.executable).parent / "modelops")
NAME = "governance-model"  # its own name: other tests number credit-scoring's versions
STANDIN = Path(__file__).resolve().parents[1] / "fixtures" / "terraform_standin" / "terraform"


def cli(world: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": world["uri"],
        "GITHUB_ACTOR": "deploy-bot",
        "TERRAFORM_STANDIN_LOG": str(world["root"] / "terraform.log"),
    }
    return subprocess.run(
        [MODELOPS, *args], capture_output=True, text=True, env=env, cwd=world["root"]
    )


def canary(
    world: dict[str, Any], env: str, release: Release, start: float, metrics: FakeMetrics
) -> tuple[Outcome, FakeMetrics]:
    """One canary through the controller, ended as the deploy CLI ends it (the receipt)."""
    run_dir = world["root"] / f"canary-{env}-{release.canary_version}"
    env_dir = world["envs"] / env
    clock = FakeClock(start)
    router = FakeRouter(live=release.stable_split())
    controller = CanaryController(
        router,
        metrics,
        RegistryPromoter(world["store"], clock=clock),
        world["params"],
        env,
        run_dir / STATE_FILE,
        run_dir,
        sleep=clock.sleep,
        clock=clock,
        plot=False,
    )
    outcome = controller.run(release)
    write_state(env_dir, router.live)  # what the GitOps commit would carry
    _record_receipt(world["store"], outcome, env_dir)
    return outcome, metrics


def run_in_server(store: RegistryClient, trained: dict[str, Any], run_file: Path) -> None:
    """The session's trained model as a run of the server (its files logged there): training
    again would only repeat what tests/integration/test_registry.py covers, slowly."""
    client = store.mlflow
    run_id = client.create_run(store.experiment_id("governance", None)).info.run_id
    trained_run = json.loads(Path(trained["run_file"]).read_text())
    client.log_artifacts(run_id, str(trained["model_dir"]), "model")
    client.set_tag(run_id, "git_commit", trained_run["git_commit"])
    client.set_terminated(run_id)
    run = {**trained_run, "run_id": run_id, "model_uri": f"runs:/{run_id}/model"}
    run_file.write_text(json.dumps(run))


@pytest.fixture(scope="module")
def world(
    mlflow_server: str,
    tmp_path_factory: pytest.TempPathFactory,
    params: Params,
    trained_model: dict[str, Any],
    repo_root: Path,
) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("governance")
    raw = yaml.safe_load((repo_root / "params.yaml").read_text())
    raw["register"]["model_name"] = NAME
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    ours = load_params(root / "params.yaml")
    fast = ours.model_copy(
        update={
            "canary": ours.canary.model_copy(
                update={"interval_seconds": 0.25, "progress_deadline_seconds": 1.0}
            )
        }
    )
    store = RegistryClient(mlflow_server)
    run_in_server(store, trained_model, root / "run.json")
    gate_report(root, 1.0, ours)
    (root / "reports").mkdir()
    for report in ("metrics.json", "data_validation.json"):  # the evaluate/validate outputs
        shutil.copy2(repo_root / "reports" / report, root / "reports" / report)
    shutil.copy2(repo_root / "dvc.lock", root / "dvc.lock")
    envs = root / "envs"
    for env in ("staging", "production"):
        shutil.copytree(repo_root / "infra" / "terraform" / "envs" / env, envs / env)
    world: dict[str, Any] = {
        "uri": mlflow_server,
        "root": root,
        "envs": envs,
        "params": fast,
        "repo_root": repo_root,
        "store": store,
    }
    world["register"] = cli(
        world, "register", "--run-file", "run.json", "--gate-report", "gate.json"
    )
    assert world["register"].returncode == 0, world["register"].stderr
    run = json.loads((root / "run.json").read_text())
    for _ in (2, 3):  # more versions of the same run, as a re-registration would give
        store.mlflow.create_model_version(NAME, run["model_uri"], run_id=run["run_id"])
    store.set_alias(NAME, "challenger", "3")
    store.tag_version(NAME, "1", {"image": STABLE})
    store.set_alias(NAME, "champion", "1")

    # The canaries' clocks run from now, a second apart, a quarter second per analysis; the
    # real clock then waits past them, so the rollback's own time comes after.
    start = math.ceil(time.time()) + 1
    world["approved_at"] = time.strftime("%Y-%m-%dT%H:%M:%S+01:00", time.gmtime(start + 3 + 3600))
    world["approved_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + 3))
    two = Release(NAME, "2", CANARY, "1", STABLE)
    broken = FakeMetrics()
    broken.tracks["canary"] = Track(errors=200.0)  # 20 % 5xx: the error-rate check fails
    three = Release(NAME, "3", "localhost/credit-scoring@sha256:" + "c" * 64, "2", CANARY)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GITHUB_ACTOR", "deploy-bot")
        world["staging"] = canary(world, "staging", two, start, FakeMetrics())
        world["failed"] = canary(world, "staging", three, start + 2, broken)
        approved = cli(
            world, "record-approval", "--version", "2", "--env", "production",
            "--approver", "alice", "--approver", "bob", "--at", world["approved_at"],
        )  # fmt: skip
        assert approved.returncode == 0, approved.stderr
        world["production"] = canary(world, "production", two, start + 4, FakeMetrics())
    time.sleep(max(0.0, start + 8 - time.time()))
    world["rollback"] = cli(
        world, "deploy", "rollback", "--env-dir", str(envs / "production"),
        "--reason", "complaints from the call centre", "--terraform", str(STANDIN),
    )  # fmt: skip
    assert world["rollback"].returncode == 0, world["rollback"].stderr
    return world


def test_register_logs_a_model_card(world: dict[str, Any]) -> None:
    store: RegistryClient = world["store"]
    ref = store.version(NAME, "1")
    assert ref.tags["model_card"] == f"runs:/{ref.run_id}/model-card.md"
    assert "model card: runs:/" in world["register"].stdout
    card = store.read_text(ref.run_id, "model-card.md")
    params, repo = world["params"], world["repo_root"]
    metrics = json.loads((repo / "reports" / "metrics.json").read_text())
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    lock_data = next(
        d["md5"] for s in lock["stages"].values() for d in s.get("deps", [])
        if d["path"] == params.data.path
    )  # fmt: skip
    assert card.startswith(f"# Model card: {NAME} version 1\n")
    assert " ".join(params.register_.card.intended_use.split()[:6]) in card
    assert f"| hash (MD5) | `{lock_data}`" in card
    rows = json.loads((repo / "reports" / "data_validation.json").read_text())["rows"]
    assert f"| rows | {rows} ({int(metrics['test_rows'])} held out for the test set) |" in card
    assert "no date column" in card
    assert (
        f"| ROC AUC | {metrics['roc_auc']:.3f} (95% CI {metrics['roc_auc_ci_low']:.3f} to "
        f"{metrics['roc_auc_ci_high']:.3f}" in card
    )
    for segment, seg in metrics["segments"].items():
        if seg["roc_auc"] is not None:
            assert (
                f"| `{segment}` | {seg['rows']} | {seg['positives']} | {seg['roc_auc']:.3f} |"
                in card
            )
    assert "**passed**: all gate checks passed." in card
    assert f"| MLflow run | `{ref.run_id}` |" in card
    assert f"| git commit | `{ref.tags['git_commit']}` |" in card
    assert f"| dvc.lock MD5 | `{file_md5(world['root'] / 'dvc.lock')}` |" in card
    assert "Missing inputs" not in card
    assert ", ".join(params.data.categorical_features) in card


def test_each_canary_appends_a_receipt(world: dict[str, Any]) -> None:
    store: RegistryClient = world["store"]
    receipts = read_receipts(store, store.version(NAME, "2"))
    assert [(r["env"], r["decision"]) for r in receipts] == [
        ("staging", "promoted"),
        ("production", "promoted"),
    ]
    staging = receipts[0]
    outcome, metrics = world["staging"]
    assert staging["image"] == CANARY and staging["stable"] == {"version": "1", "image": STABLE}
    assert staging["by"] == "deploy-bot"
    assert staging["duration_s"] == pytest.approx(outcome.duration_s, abs=1)
    assert len(staging["analyses"]) == outcome.analyses == len(world["params"].canary.steps)
    ran = set(metrics.queries)
    for analysis in staging["analyses"]:
        assert analysis["verdict"] == "passed"
        for check in analysis["checks"]:  # the evidence is what the controller asked Prometheus
            assert check["queries"]["canary"] and set(check["queries"]["canary"]) <= ran
            assert set(check["queries"]["stable"]) <= ran
    last = {c["name"]: c for c in staging["analyses"][-1]["checks"]}
    assert last["error_rate"]["threshold"] == world["params"].canary.max_error_rate
    assert last["requests"]["canary"] == 1000.0 and last["requests"]["verdict"] == "passed"
    state_file = world["envs"] / "staging" / "deploy.auto.tfvars.json"
    blob = subprocess.run(
        ["git", "hash-object", str(state_file)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert staging["gitops"] == {"file": str(state_file), "blob": blob, "commit": None}

    failed = read_receipts(store, store.version(NAME, "3"))
    assert [(r["env"], r["decision"]) for r in failed] == [("staging", "rolled back")]
    bad = [c for a in failed[0]["analyses"] for c in a["checks"] if c["verdict"] == "failed"]
    assert {c["name"] for c in bad} == {"error_rate"} and bad[0]["canary"] > 0.01
    assert "error_rate" in failed[0]["reason"]

    tags = store.version(NAME, "2").tags
    assert tags["canary.production.decision"] == "promoted"
    assert tags["canary.production.receipt"].endswith(receipts[1]["receipt"])
    _record_receipt(store, world["production"][0], world["envs"] / "production")  # resumed
    assert len(read_receipts(store, store.version(NAME, "2"))) == 2  # no duplicate


def history(world: dict[str, Any], *args: str) -> dict[str, Any]:
    done = cli(world, "history", "--json", *args)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_history_answers_who_deployed_what_where_and_when(world: dict[str, Any]) -> None:
    full = model_history(world["store"], NAME)
    times = [e["at"] for e in full["events"]]
    assert times == sorted(times)
    assert full["aliases"] == {"challenger": "3", "champion": "1"}
    assert [e["event"] for e in full["events"][:3]] == ["registered"] * 3
    registered = full["events"][0]
    ref = world["store"].version(NAME, "1")
    assert registered["run_id"] == ref.run_id and registered["gate"] == "passed"
    assert registered["model_card"] == ref.tags["model_card"]

    production = history(world, "--env", "production")
    kinds = [(e["event"], e["version"], e["env"]) for e in production["events"]]
    assert kinds == [
        ("registered", "2", None),
        ("approved", "2", "production"),
        ("canary", "2", "production"),
        ("promoted", "2", "production"),
        ("rolled back", "2", "production"),
    ]
    approved, canary_, promoted, rolled = production["events"][1:]
    assert approved["by"] == "alice, bob"
    assert approved["at"] == world["approved_utc"]  # given at +01:00, kept in UTC
    assert approved["at"] < canary_["at"] == promoted["at"] < rolled["at"]
    assert canary_["result"] == "promoted" and canary_["duration_s"] > 0
    assert promoted["by"] == "deploy-bot"
    assert promoted["image"] == CANARY
    assert rolled["by"] == "deploy-bot" and rolled["reason"] == "complaints from the call centre"

    staging = model_history(world["store"], NAME, "staging")
    assert [
        (e["event"], e["version"]) for e in staging["events"] if e["event"] != "registered"
    ] == [
        ("canary", "2"),
        ("promoted", "2"),
        ("canary", "3"),
    ]
    table = cli(world, "history", "--env", "production")
    assert table.returncode == 0 and "alice, bob" in table.stdout and "rolled back" in table.stdout


def test_retire_refuses_what_is_in_use_and_archives_the_rest(world: dict[str, Any]) -> None:
    envs = world["envs"]
    store: RegistryClient = world["store"]
    served = served_versions(envs)
    assert served == {"production": {"1"}, "staging": {"2"}}
    with pytest.raises(Refused, match="alias 'champion'; environment production"):
        retire_version(store, NAME, "1", "me", "old", served)
    staged = cli(world, "retire", "2", "--reason", "old", "--envs-dir", str(envs))
    assert staged.returncode == 1 and "environment staging. Deploy another" in staged.stderr
    assert "retired" not in store.version(NAME, "2").tags
    with pytest.raises(Refused, match="rollback chain"):  # v1 would roll back to v2 now
        store.tag_version(NAME, "1", {"previous_champion": "2"})
        retire_version(store, NAME, "2", "me", "old", {})
    store.mlflow.delete_model_version_tag(NAME, "1", "previous_champion")

    done = cli(world, "retire", "3", "--reason", "failed its canary", "--envs-dir", str(envs))
    assert done.returncode == 0, done.stderr
    ref = world["store"].version(NAME, "3")
    assert ref.tags["retired"] == "true" and ref.tags["retired_by"] == "deploy-bot"
    assert ref.tags["retired_reason"] == "failed its canary" and ref.aliases == ()
    last = model_history(store, NAME)["events"][-1]
    assert (last["event"], last["version"], last["reason"]) == ("retired", "3", "failed its canary")


def test_bad_approval_input_is_refused_and_writes_nothing(world: dict[str, Any]) -> None:
    store: RegistryClient = world["store"]
    with pytest.raises(RegistryError, match="with its offset"):
        record_approval(store, NAME, "3", "production", ["carol"], "2027-01-15 09:00")
    with pytest.raises(RegistryError, match="once per --approver"):
        record_approval(store, NAME, "3", "production", ["carol", " "], "2027-01-15T09:00Z")
    missing = cli(world, "record-approval", "--version", "99", "--env", "production",
                  "--approver", "carol", "--at", "2027-01-15T09:00:00Z")  # fmt: skip
    assert missing.returncode == 1 and "models:/governance-model/99 is not in" in missing.stderr
    assert not any(k.startswith("approved.") for k in store.version(NAME, "3").tags)
