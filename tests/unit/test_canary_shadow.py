"""The shadow phase: joining the two tracks' prediction logs and the controller around it.

The prediction logs are real files in the service's line format (serving/predlog.py), in
both layouts (one file; day partitions); the controller runs with the in-memory router,
metrics and promoter of tests/fixtures/canary_fakes.py. nginx mirroring real requests runs
in tests/e2e/test_canary_local.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from modelops.config import Params
from modelops.deploy.controller import STATE_FILE, CanaryController, Phase, Release
from modelops.deploy.report import render_markdown, render_prom
from modelops.deploy.shadow import PredictionLogs, analyse_shadow, join
from modelops.deploy.state import load_state
from tests.fixtures.canary_fakes import (
    CANARY,
    STABLE,
    FakeClock,
    FakeMetrics,
    FakePromoter,
    FakeRouter,
)

RELEASE = Release("credit-scoring", "2", CANARY, "1", STABLE)


class LiveLogs:
    """Writes prediction-log lines for both tracks as the clock moves (one request a call)."""

    def __init__(self, root: Path, clock: FakeClock, flip_every: int = 0) -> None:
        self.paths = {"stable": root / "stable.jsonl", "canary": root / "canary"}
        self.clock, self.flip_every, self.n = clock, flip_every, 0
        self.paths["canary"].mkdir(parents=True)
        self.rng = np.random.default_rng(0)

    def write(self, requests: int) -> None:
        for _ in range(requests):
            self.n += 1
            rid = f"req-{self.n}"
            stamp = datetime.fromtimestamp(self.clock(), UTC).isoformat(timespec="milliseconds")
            day = self.paths["canary"] / f"date={stamp[:10]}"
            day.mkdir(exist_ok=True)
            for row in range(5):
                score = float(self.rng.uniform())
                flipped = self.flip_every and self.n % self.flip_every == 0
                line = {"request_id": rid, "row": row, "timestamp": stamp, "score": score,
                        "decision": "bad" if score >= 0.5 else "good"}  # fmt: skip
                with self.paths["stable"].open("a") as handle:
                    handle.write(json.dumps(line) + "\n")
                if flipped:
                    line = {**line, "score": 1 - score,
                            "decision": "good" if score >= 0.5 else "bad"}  # fmt: skip
                with (day / "part-0.jsonl").open("a") as handle:
                    handle.write(json.dumps(line) + "\n")


def shadow_params(params: Params) -> Params:
    shadow = params.canary.shadow.model_copy(update={"min_requests": 50})
    canary = params.canary.model_copy(update={"shadow": shadow})
    return params.model_copy(update={"canary": canary})


def run(
    params: Params, tmp_path: Path, flip_every: int, plot: bool = False
) -> tuple[CanaryController, FakeRouter]:
    clock = FakeClock()
    logs = LiveLogs(tmp_path / "logs", clock, flip_every)
    router = FakeRouter()

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if router.live.canary_mirror_percent:  # mirrored traffic while the shadow runs
            logs.write(int(seconds * 10))

    controller = CanaryController(
        router, FakeMetrics(), FakePromoter(), params, "staging",
        tmp_path / "run" / STATE_FILE, tmp_path / "run",
        sleep=sleep, clock=clock, plot=plot, shadow=PredictionLogs(logs.paths),
    )  # fmt: skip
    return controller, router


def test_join_matches_rows_by_request_id_in_both_layouts(tmp_path: Path) -> None:
    clock = FakeClock()
    logs = LiveLogs(tmp_path, clock, flip_every=4)
    logs.write(40)
    joined = join(PredictionLogs(logs.paths), since=clock() - 1)
    assert joined.requests == 40 and joined.canary_scores.size == 200
    assert joined.agree.mean() == pytest.approx(0.75)  # every 4th request flipped
    assert join(PredictionLogs(logs.paths), since=clock() + 1).requests == 0


def test_a_cut_last_line_is_skipped_a_damaged_one_fails_the_log_checks(
    params: Params, tmp_path: Path
) -> None:
    clock = FakeClock()
    logs = LiveLogs(tmp_path, clock)
    logs.write(40)
    stable = logs.paths["stable"]
    with stable.open("a") as handle:
        handle.write('{"request_id": "cut", "row": 0, "sco')  # a writer killed mid-line
    assert join(PredictionLogs(logs.paths), since=clock() - 1).requests == 40
    stable.write_text("not json\n" + stable.read_text())
    analysis = analyse_shadow(
        PredictionLogs(logs.paths), FakeMetrics(), shadow_params(params), "staging", 0.0, 10
    )
    check = analysis.check("shadow_requests")
    assert analysis.verdict == "failed" and check.verdict == "failed"
    assert f"{stable}:1: not valid JSON" in check.message


def test_candidate_that_flips_a_segment_is_rejected_before_user_traffic(
    params: Params, tmp_path: Path
) -> None:
    controller, router = run(shadow_params(params), tmp_path, flip_every=5, plot=True)
    outcome = controller.run(RELEASE)
    assert outcome.phase == Phase.FAILED
    assert outcome.reason.startswith("rejected in shadow: decision_agreement failed 2 times")
    assert "threshold 0.95" in outcome.reason
    # Mirrored only, then stable alone: the candidate never got a user request.
    assert [(s.canary_weight, s.canary_mirror_percent) for s in router.applied] == [(0, 50), (0, 0)]
    state = load_state(tmp_path / "run" / STATE_FILE)
    assert {r.phase for r in state.history} == {"shadow"}
    summary = render_markdown(state, params)
    assert "shadow (50% mirrored, no user traffic)" in summary
    assert "| decision_agreement | 80.00% |" in summary
    assert (tmp_path / "run" / "timeline.png").stat().st_size > 0


def test_candidate_that_agrees_goes_on_to_the_canary_steps(params: Params, tmp_path: Path) -> None:
    p = shadow_params(params)
    controller, router = run(p, tmp_path, flip_every=0)
    outcome = controller.run(RELEASE)
    assert outcome.promoted
    mirrored = [s for s in router.applied if s.canary_mirror_percent]
    assert len(mirrored) == 1 and mirrored[0].canary_weight == 0
    assert [s.canary_weight for s in router.applied][1:5] == p.canary.steps
    state = load_state(tmp_path / "run" / STATE_FILE)
    shadow = [r for r in state.history if r.phase == "shadow"]
    assert shadow[-1].analysis.verdict == "passed"
    assert shadow[-1].at - state.started_at >= p.canary.shadow.duration_seconds
    assert any("shadow passed after" in e["message"] for e in state.events)


def test_shadow_is_skipped_with_a_reason_when_no_logs_can_be_joined(
    params: Params, tmp_path: Path
) -> None:
    clock = FakeClock()
    controller = CanaryController(
        FakeRouter(), FakeMetrics(), FakePromoter(), params, "staging",
        tmp_path / STATE_FILE, tmp_path, sleep=clock.sleep, clock=clock, plot=False,
        shadow_skip_reason="no log source here",
    )  # fmt: skip
    assert controller.run(RELEASE).promoted
    events = [e["message"] for e in load_state(tmp_path / STATE_FILE).events]
    assert "shadow phase skipped: no log source here" in events


def test_too_few_joined_requests_is_inconclusive_never_a_pass(
    params: Params, tmp_path: Path
) -> None:
    logs = PredictionLogs({"stable": tmp_path / "none", "canary": tmp_path / "none"})
    analysis = analyse_shadow(logs, FakeMetrics(), params, "staging", 0.0, 10)
    assert analysis.verdict == "inconclusive"
    assert analysis.check("shadow_requests").verdict == "inconclusive"


def test_canary_prom_shows_the_shadow_phase(params: Params, tmp_path: Path) -> None:
    controller, _ = run(shadow_params(params), tmp_path, flip_every=5)
    controller.run(RELEASE)
    state = load_state(tmp_path / "run" / STATE_FILE)
    state.phase = Phase.SHADOWING
    text = render_prom(state, 50).decode()
    assert 'modelops_canary_mirror_percent{env="staging",model="credit-scoring"} 50.0' in text
    assert 'modelops_canary_phase{env="staging",model="credit-scoring",phase="shadowing"} 1.0' in (
        text
    )
    assert 'check="decision_agreement"' in text
