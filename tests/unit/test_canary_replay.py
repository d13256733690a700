"""Recording every analysis's metrics, replaying them under other params, and the dry run.

The controller runs against the in-memory stand-ins of tests/fixtures/canary_fakes.py (as in
test_canary_controller.py); the recording is the real file it writes, the replay the real
analysis on it, the CLI the real `modelops deploy canary --replay`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelops.cli import app
from modelops.config import Params
from modelops.deploy.controller import CanaryController, Phase, Release
from modelops.deploy.dryrun import DryRunPromoter, DryRunRouter
from modelops.deploy.replay import RECORD_FILE, read_record, replay
from modelops.errors import ModelopsError
from tests.fixtures.canary_fakes import (
    CANARY,
    STABLE,
    FakeClock,
    FakeMetrics,
    FakePromoter,
    FakeRouter,
)

RELEASE = Release("credit-scoring", "2", CANARY, "1", STABLE)


def run(params: Params, run_dir: Path, metrics: FakeMetrics, **options: object) -> Phase:
    clock = FakeClock()
    controller = CanaryController(
        options.pop("router", FakeRouter()),
        metrics,
        options.pop("promoter", FakePromoter()),
        params,
        "staging",
        run_dir / "canary-state.json",
        run_dir,
        sleep=clock.sleep,
        clock=clock,
        plot=False,
        record=run_dir / RECORD_FILE,
    )
    return controller.run(RELEASE).phase


def with_canary(params: Params, **update: float) -> Params:
    return params.model_copy(update={"canary": params.canary.model_copy(update=update)})


@pytest.fixture
def slow_record(params: Params, tmp_path: Path) -> Path:
    """A recorded release whose canary is 300 ms at p99: rolled back on the shipped params."""
    metrics = FakeMetrics()
    metrics.tracks["canary"].p99_s = 0.3
    assert run(params, tmp_path, metrics) == Phase.FAILED
    return tmp_path / RECORD_FILE


def test_every_analysis_is_recorded_with_its_answers(slow_record: Path, params: Params) -> None:
    records = list(read_record(slow_record))
    assert len(records) == params.canary.failure_threshold
    first = records[0]
    assert first["weight"] == 5 and first["env"] == "staging"
    assert any(q.startswith("histogram_quantile") for q in first["answers"])
    assert {a.get("value") for q, a in first["answers"].items() if "quantile" in q} == {0.3, 0.008}


def test_replay_with_the_same_params_reaches_the_same_decision(
    slow_record: Path, params: Params
) -> None:
    judged = replay(slow_record, params)
    assert [j.decision for j in judged] == ["continue", "roll back (p99_latency failed 2 times)"]


def test_replay_tries_a_threshold_change_on_a_past_release(
    slow_record: Path, params: Params
) -> None:
    relaxed = with_canary(params, max_p99_ms=500.0, p99_slack_ms=400.0)
    judged = replay(slow_record, relaxed)
    assert [j.analysis.check("p99_latency").verdict for j in judged] == ["passed", "passed"]
    assert all(j.decision == "continue" for j in judged)  # the recording ended at 5 %
    stricter = with_canary(params, failure_threshold=1)
    assert replay(slow_record, stricter)[0].decision.startswith("roll back")


def test_replay_cli_prints_each_decision(slow_record: Path) -> None:
    done = CliRunner().invoke(app, ["deploy", "canary", "--replay", str(slow_record)])
    assert done.exit_code == 0, done.output
    assert "step 1 (  5%) failed" in done.output
    assert "roll back (p99_latency failed 2 times)" in done.output


def test_replay_refuses_a_missing_or_broken_record(tmp_path: Path, params: Params) -> None:
    with pytest.raises(ModelopsError, match="no metrics recording"):
        replay(tmp_path / "none.jsonl", params)
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{not json\n")
    with pytest.raises(ModelopsError, match=r"broken\.jsonl:1: not a JSON line"):
        replay(broken, params)


def test_dry_run_moves_nothing_and_says_what_it_would_do(
    params: Params, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    live = FakeRouter()
    router, promoter = DryRunRouter(live), DryRunPromoter()
    metrics = FakeMetrics()
    metrics.tracks["canary"].errors = 80.0
    with caplog.at_level(logging.WARNING):
        phase = run(params, tmp_path, metrics, router=router, promoter=promoter)
    assert phase == Phase.FAILED
    assert live.applied == [] and live.live.canary_image is None  # nothing moved
    assert [s.canary_weight for s in router.would_apply] == [5, 0]
    assert promoter.would[-1].startswith("tag credit-scoring 2 rejected: at 5%: error_rate")
    assert "DRY RUN: would apply stable 1, canary 2 at 5%" in caplog.text


def test_dry_run_on_the_local_rehearsal_is_refused_with_what_to_do() -> None:
    done = CliRunner().invoke(app, ["deploy", "canary", "--target", "local", "--dry-run"])
    assert done.exit_code != 0
    message = str(done.exception)
    assert "--dry-run analyses the live traffic of an environment" in message
    assert "--replay" in message
