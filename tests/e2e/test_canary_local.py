"""The canary rehearsal end to end: `modelops deploy canary --target local` with real processes.

Every test runs the real command in a subprocess against a real MLflow registry (SQLite in
a temporary folder): two `python -m serving` processes, nginx splitting traffic by weight, a
Prometheus scraping both with the repository's rules, load sent through nginx, the canary
controller deciding. Short settings keep it fast: steps 10/50/100 %, 4 s per analysis, two
failures of a check roll back; the load (50 requests/s of 25 real rows) gives the canary
500 scored rows per interval at 10 %, over the PSI check's minimum here (400).

The champion is the session's trained model; the challengers
(src/modelops/bench/challengers.py) are real MLflow models: a fresh training run (good), and
ones that fail on part of the inputs, are slow, or score far higher than the champion.
`--keep-env` leaves the processes running after the decision, so each test then checks
through nginx itself which model answers, and stops them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import mlflow
import pandas as pd
import pytest
import yaml

from modelops.bench import challengers as canary_models
from modelops.config import Params
from modelops.deploy.gitops import TrafficSplit, read_state, write_state
from modelops.deploy.local.env import LocalEnv, prediction_log_path
from modelops.deploy.local.loadgen import LoadGenerator, records_from_table
from modelops.deploy.state import CanaryState, Phase, load_state
from modelops.monitor.predlogs import read_records
from modelops.pipeline.train import train_and_log
from modelops.registry.client import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS_CHAMPION,
    RegistryClient,
)
from modelops.registry.tracking import TrackingSettings
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
STEPS = [10, 50, 100]
CANARY = {
    "steps": STEPS,
    "interval_seconds": 4,
    "min_requests": 5,
    "min_score_rows": 400,
    # A shared 2-core machine gives a small canary sample the odd slow request; the slow
    # challenger is caught by the 200 ms cap, which this does not touch.
    "p99_slack_ms": 60,
    "failure_threshold": 2,
    "progress_deadline_seconds": 40,
    "rollback_retry_seconds": 1,
    "shadow": {"enabled": False},  # these tests judge the canary steps; shadow has its own
}
LOAD = ["--rps", "50", "--batch", "25"]
CHECKED_REQUESTS = 60
STANDIN = REPO_ROOT / "tests" / "fixtures" / "terraform_standin" / "terraform"


class Store:
    """The registry of this module: versions by role, and the CLI's environment."""

    def __init__(self, root: Path, tracking_uri: str, params: Params) -> None:
        self.root, self.tracking_uri, self.name = root, tracking_uri, params.register_.model_name
        self.registry = RegistryClient(tracking_uri)
        self.versions: dict[str, str] = {}
        self.params_file = root / "params.yaml"
        self.rows = root / "test.parquet"

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            # The failing and slow challengers carry a custom pipeline step (cloudpickled);
            # MLflow loads pickled models only when told to trust them.
            "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
            **extra,
        }

    def stage(self, challenger: str) -> None:
        """champion -> the first version, challenger -> the one under test (as `make run`
        would leave them)."""
        self.registry.set_alias(self.name, CHAMPION, self.versions["champion"])
        self.registry.set_alias(self.name, CHALLENGER, self.versions[challenger])

    def champion(self) -> str:
        found = self.registry.version_by_alias(self.name, CHAMPION)
        assert found is not None
        return found.version

    def tags(self, role: str) -> dict[str, str]:
        return self.registry.version_tags(self.name, self.versions[role])


@pytest.fixture(scope="module")
def store(
    tmp_path_factory: pytest.TempPathFactory,
    params: Params,
    split_frames: tuple[pd.DataFrame, pd.DataFrame],
    trained_model: dict[str, Any],
) -> Store:
    """The session's trained model as champion, a fresh training run as the good challenger,
    the three bad challengers, all registered; params with the short canary settings."""
    root = tmp_path_factory.mktemp("canary")
    settings = TrackingSettings(
        tracking_uri=f"sqlite:///{root / 'mlflow.db'}", artifact_root=str(root / "mlartifacts")
    )
    store = Store(root, settings.tracking_uri, params)
    train_path = root / "train.parquet"
    split_frames[0].to_parquet(train_path, index=False)
    split_frames[1].to_parquet(store.rows, index=False)
    good = train_and_log(
        params, train_path, REPO_ROOT / params.data.path, root / "good", root / "good.json",
        settings,
    )  # fmt: skip
    champion_dir = Path(trained_model["model_dir"])  # train_and_log pointed MLflow here
    client = store.registry.mlflow
    client.create_registered_model(store.name)
    store.versions["champion"] = str(
        client.create_model_version(store.name, str(champion_dir)).version
    )
    ref, _ = store.registry.register(store.name, good.model_uri, good.run_id, {}, [])
    store.versions["good"] = ref.version
    for kind in canary_models.VARIANTS:
        uri = canary_models.build(kind, champion_dir, params, train_path, "canary-tests")
        run_id = mlflow.get_logged_model(uri.rsplit("/", 1)[-1]).source_run_id
        ref, _ = store.registry.register(store.name, uri, str(run_id), {}, [])
        store.versions[kind] = ref.version
    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    raw["canary"].update(CANARY)
    store.params_file.write_text(yaml.safe_dump(raw, sort_keys=False))
    return store


@pytest.fixture
def run_dir(tmp_path: Path) -> Iterator[Path]:
    """The rehearsal's folder; whatever still runs there is stopped after the test."""
    folder = tmp_path / "rehearsal"
    yield folder
    if (folder / "env.json").is_file():
        LocalEnv.load(folder).stop()


def command(store: Store, run_dir: Path, *extra: str, params: Path | None = None) -> list[str]:
    load = [] if "--rps" in extra else LOAD
    return [
        str(BIN / "modelops"), "deploy", "canary", "--target", "local",
        "--params", str(params or store.params_file),
        "--run-dir", str(run_dir), "--rows", str(store.rows), "--keep-env", *load, *extra,
    ]  # fmt: skip


def canary(
    store: Store, run_dir: Path, *extra: str, params: Path | None = None, **env: str
) -> subprocess.CompletedProcess:
    return subprocess.run(
        command(store, run_dir, *extra, params=params),
        cwd=REPO_ROOT,
        env=store.env(**env),
        capture_output=True,
        text=True,
        timeout=240,
    )


def answered_by(run_dir: Path, requests: int = CHECKED_REQUESTS) -> Counter[str]:
    """Send real rows through the rehearsal's nginx; count the answering model versions."""
    env = LocalEnv.load(run_dir)
    example = json.loads(
        (Path(env.services["canary"].model_dir) / "input_example.json").read_text()
    )
    record = dict(zip(example["columns"], example["data"][0], strict=True))
    versions: Counter[str] = Counter()
    with httpx.Client(timeout=10) as client:
        for _ in range(requests):
            response = client.post(f"{env.url}/predict", json=record)
            assert response.status_code == 200, response.text
            versions[response.json()["model_version"]] += 1
    return versions


def wait_for_state(run_dir: Path, condition: Callable[[CanaryState], bool], timeout: float) -> None:
    path = run_dir / "canary-state.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and condition(load_state(path)):
            return
        time.sleep(0.2)
    raise AssertionError(f"the canary state in {path} did not get there in {timeout}s")


def assert_reports(run_dir: Path) -> None:
    for name in ("canary-state.json", "canary-summary.md", "canary.prom", "timeline.png"):
        assert (run_dir / name).stat().st_size > 0, name
    assert (run_dir / "nginx" / "split.json").is_file()


def assert_rolled_back(store: Store, run_dir: Path, done: Any, role: str) -> CanaryState:
    """Exit 3, stable serves every request, champion unmoved, the version tagged rejected."""
    assert done.returncode == 3, done.stdout + done.stderr
    assert "ROLLED BACK" in done.stdout
    state = load_state(run_dir / "canary-state.json")
    assert state.phase == Phase.FAILED
    stable = store.versions["champion"]
    assert answered_by(run_dir) == {stable: CHECKED_REQUESTS}
    live = LocalEnv.load(run_dir).router.current()
    assert (live.stable_model_version, live.canary_image, live.canary_weight) == (stable, None, 0)
    assert store.champion() == stable
    assert store.tags(role)["rejected"] == state.reason
    assert_reports(run_dir)
    return state


def over_threshold(state: CanaryState) -> set[str]:
    return {name for name, n in state.failures.items() if n >= CANARY["failure_threshold"]}


def test_good_challenger_is_promoted_through_every_step(store: Store, run_dir: Path) -> None:
    store.stage("good")
    done = canary(store, run_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PROMOTED" in done.stdout
    assert "receipt: models:/" in done.stdout  # the decision's receipt, on the version's run
    state = load_state(run_dir / "canary-state.json")
    assert state.phase == Phase.SUCCEEDED
    applied = [w for _, w in state.weights]
    assert applied[: len(STEPS)] == STEPS  # every step, in order, then the promotion
    assert {r.weight for r in state.history if r.analysis.verdict == "passed"} == set(STEPS)
    good = store.versions["good"]
    assert store.champion() == good
    assert store.tags("good")[PREVIOUS_CHAMPION] == store.versions["champion"]
    assert answered_by(run_dir) == {good: CHECKED_REQUESTS}
    live = LocalEnv.load(run_dir).router.current()
    assert (live.stable_model_version, live.canary_weight) == (good, 0)
    assert live.stable_image == state.release.canary_image
    assert_reports(run_dir)
    load = json.loads((run_dir / "load.json").read_text())
    assert set(load["by_model_version"]) == {store.versions["champion"], good}


def test_errors_roll_back(store: Store, run_dir: Path) -> None:
    store.stage("failing")
    # The failing challenger's custom step keeps it off the fast path; both tracks run the
    # sklearn predictor here so that latency compares like with like and only errors differ.
    done = canary(store, run_dir, MODELOPS_FAST_PATH="false")
    state = assert_rolled_back(store, run_dir, done, "failing")
    assert over_threshold(state) == {"error_rate"}
    assert "error_rate failed 2 times" in state.reason


def test_latency_rolls_back(store: Store, run_dir: Path) -> None:
    store.stage("slow")
    # Half the requests, twice the rows each: the slow canary (one worker, 120 ms a request)
    # stays well under saturation, so Prometheus still scrapes it and only latency fails.
    done = canary(store, run_dir, "--rps", "25", "--batch", "50")
    state = assert_rolled_back(store, run_dir, done, "slow")
    assert over_threshold(state) == {"p99_latency"}
    assert "p99_latency failed 2 times" in state.reason


def test_score_shift_rolls_back(store: Store, run_dir: Path) -> None:
    store.stage("shifted")
    state = assert_rolled_back(store, run_dir, canary(store, run_dir), "shifted")
    assert over_threshold(state) == {"score_psi"}
    assert "score_psi failed 2 times" in state.reason


def test_shadow_rejects_a_candidate_that_flips_a_segment_before_any_user_request(
    store: Store, run_dir: Path
) -> None:
    """nginx mirrors every request to the candidate (same X-Request-ID), both services log
    their answers, the shadow analysis joins them: the candidate that flips decisions for
    renters (~22 % of rows) is rejected, and no user request was ever answered by it."""
    store.stage("flipped")
    raw = yaml.safe_load(store.params_file.read_text())
    raw["canary"]["shadow"] = {"enabled": True, "mirror_percent": 100, "duration_seconds": 4,
                               "min_requests": 50}  # fmt: skip
    params = store.root / "params-shadow.yaml"
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    done = canary(store, run_dir, params=params, MODELOPS_FAST_PATH="false")
    assert done.returncode == 3, done.stdout + done.stderr
    state = load_state(run_dir / "canary-state.json")
    assert state.phase == Phase.FAILED
    assert state.reason.startswith("rejected in shadow: decision_agreement failed 2 times")
    assert all(w == 0 for _, w in state.weights)  # user traffic never moved
    agreement = state.history[-1].analysis.check("decision_agreement").canary
    assert agreement is not None and 0.6 < agreement < 0.9
    load = json.loads((run_dir / "load.json").read_text())
    flipped, champion = store.versions["flipped"], store.versions["champion"]
    assert set(load["by_model_version"]) == {champion}
    canary_address = LocalEnv.load(run_dir).services["canary"].address
    assert canary_address not in load["by_upstream"]
    # The candidate did answer the mirrored copies, under the requests' own ids.
    ids = {
        t: {line["request_id"] for line in read_records(prediction_log_path(run_dir, t))}
        for t in ("stable", "canary")
    }
    assert len(ids["canary"]) >= 50 and ids["canary"] <= ids["stable"]
    assert store.tags("flipped")["rejected"] == state.reason
    assert answered_by(run_dir) == {champion: CHECKED_REQUESTS}
    assert flipped != champion
    summary = (run_dir / "canary-summary.md").read_text()
    assert "shadow (100% mirrored, no user traffic)" in summary


def test_killed_controller_resumes_and_finishes(store: Store, run_dir: Path) -> None:
    store.stage("good")
    process = subprocess.Popen(
        command(store, run_dir),
        cwd=REPO_ROOT,
        env=store.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_state(run_dir, lambda s: 50 in [w for _, w in s.weights], timeout=120)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    # The controller is gone mid-step; its environment (the "cluster") still splits traffic.
    env = LocalEnv.attach(run_dir)
    assert env is not None
    assert env.router.current().canary_weight == 50
    assert load_state(run_dir / "canary-state.json").phase == Phase.PROGRESSING
    assert set(answered_by(run_dir)) == {store.versions["champion"], store.versions["good"]}

    done = canary(store, run_dir, "--resume")
    assert done.returncode == 0, done.stdout + done.stderr
    state = load_state(run_dir / "canary-state.json")
    assert state.phase == Phase.SUCCEEDED
    assert any("resumed in phase progressing" in e["message"] for e in state.events)
    assert store.champion() == store.versions["good"]
    assert answered_by(run_dir) == {store.versions["good"]: CHECKED_REQUESTS}


def test_prometheus_stopped_midway_rolls_back(store: Store, run_dir: Path) -> None:
    store.stage("good")
    process = subprocess.Popen(
        command(store, run_dir),
        cwd=REPO_ROOT,
        env=store.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_state(run_dir, lambda s: len(s.history) >= 1, timeout=120)
    prometheus = LocalEnv.load(run_dir).manifest.prometheus_pid
    assert str(run_dir) in Path(f"/proc/{prometheus}/cmdline").read_text()
    os.kill(prometheus, signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=180)
    done = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    state = assert_rolled_back(store, run_dir, done, "good")
    assert "metrics query failed" in state.reason


def test_deploy_target_moves_the_rehearsal_through_the_terraform_standin(
    store: Store, run_dir: Path, tmp_path: Path, params: Params, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deploy workflow's command (`--target infra/terraform/envs/<env>`), first as a dry
    run, then for real: TerraformRouter runs the terraform stand-in, which routes each
    applied desired state through the rehearsal's nginx (there is no cluster here); analysis
    queries the rehearsal's Prometheus, whose series carry the environment's label."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.tracking_uri)
    store.stage("good")
    env_dir = tmp_path / "envs" / "staging"
    shutil.copytree(REPO_ROOT / "infra" / "terraform" / "envs" / "staging", env_dir)
    champion, good = store.versions["champion"], store.versions["good"]
    calls = tmp_path / "terraform-calls.jsonl"
    with LocalEnv.start(
        run_dir,
        stable=f"models:/{store.name}/{champion}",
        canary=f"models:/{store.name}/{good}",
        params_path=store.params_file,
        prometheus_template=REPO_ROOT / "infra" / "local" / "prometheus" / "prometheus.yml",
        env_label="staging",
    ) as env:
        image = env.services["canary"].image
        rows = records_from_table(store.rows, params.data.features)
        deploy = [
            str(BIN / "modelops"), "deploy", "canary", "--target", str(env_dir),
            "--model-version", good, "--image", image, "--terraform", str(STANDIN),
            "--run-dir", str(tmp_path / "deploy"), "--params", str(store.params_file),
        ]  # fmt: skip
        deploy_env = store.env(
            PROMETHEUS_URL=env.prometheus_url,
            TERRAFORM_STANDIN_REHEARSAL=str(run_dir),
            TERRAFORM_STANDIN_LOG=str(calls),
        )
        # First a dry run while the canary already serves half the traffic: the analysis
        # runs on the live metrics, every action is printed, nothing moves.
        half = TrafficSplit(env.services["stable"].image, champion, image, good, 50)
        env.router.apply(half)
        write_state(env_dir, half)
        with LoadGenerator(env.url, rows, rps=50, batch=25):
            dry = subprocess.run(
                [*deploy, "--dry-run"], cwd=REPO_ROOT, env=deploy_env,
                capture_output=True, text=True, timeout=240,
            )  # fmt: skip
        assert dry.returncode == 0, dry.stdout + dry.stderr
        assert "DRY RUN, would be PROMOTED" in dry.stdout
        assert "DRY RUN: would apply stable" in dry.stderr
        assert f"DRY RUN: would move credit-scoring champion to {good}" in dry.stderr
        assert not calls.exists()  # terraform never ran
        assert read_state(env_dir) == half and env.router.current() == half
        assert store.champion() == champion
        dry_state = load_state(tmp_path / "deploy" / "dry-run" / "canary-state.json")
        assert dry_state.history[-1].analysis.verdict == "passed"
        assert not (tmp_path / "deploy" / "canary-state.json").exists()

        live = TrafficSplit(env.services["stable"].image, champion)
        env.router.apply(live)
        write_state(env_dir, live)  # the GitOps file says what is live
        with LoadGenerator(env.url, rows, rps=50, batch=25):
            done = subprocess.run(
                deploy, cwd=REPO_ROOT, env=deploy_env, capture_output=True, text=True, timeout=240
            )
        assert done.returncode == 0, done.stdout + done.stderr
        assert read_state(env_dir) == TrafficSplit(image, good)
        applied = [
            entry["tfvars"]["canary_weight"]
            for entry in map(json.loads, calls.read_text().splitlines())
            if entry["command"] == "apply"
        ]
        assert applied == [*STEPS, 0]
        assert env.router.current() == TrafficSplit(image, good)
        assert answered_by(run_dir) == {good: CHECKED_REQUESTS}
    assert store.champion() == good


def test_first_deploy_goes_to_stable_after_a_smoke_test(store: Store, run_dir: Path) -> None:
    """No champion yet: only the challenger's service starts, nginx answers 503 until the
    smoke test passed, then the controller routes everything to it and it becomes champion."""
    store.stage("good")
    store.registry.mlflow.delete_registered_model_alias(store.name, CHAMPION)
    done = canary(store, run_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    state = load_state(run_dir / "canary-state.json")
    assert state.phase == Phase.SUCCEEDED
    assert state.history == []  # nothing to compare with: no analysis, no steps
    assert any("smoke test passed" in e["message"] for e in state.events)
    assert set(LocalEnv.load(run_dir).services) == {"canary"}
    good = store.versions["good"]
    assert store.champion() == good
    assert answered_by(run_dir) == {good: CHECKED_REQUESTS}
