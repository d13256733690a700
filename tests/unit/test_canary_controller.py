"""The canary state machine with an in-memory router, metrics and promoter.

Stand-ins (tests/fixtures/canary_fakes.py) so every path runs in milliseconds: promotion,
rollback per cause, inconclusive until the deadline, router failures (during a step and
during the rollback itself), resume from every phase, first deploy. The real processes
(nginx, Prometheus, model services) run the same controller in tests/e2e/test_canary_*.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from modelops.config import Params
from modelops.deploy.controller import (
    LOCK_FILE,
    STATE_FILE,
    CanaryController,
    Outcome,
    Phase,
    PromotionFailed,
    Release,
    RollbackFailed,
    StateError,
    resume_canary,
    run_canary,
)
from modelops.deploy.gitops import TrafficSplit
from modelops.deploy.report import render_timeline_text, timings
from modelops.deploy.state import Lock, load_state, save_state, write_lock
from modelops.errors import ModelopsError
from tests.fixtures.canary_fakes import (
    CANARY,
    SHIFTED_SCORES,
    STABLE,
    FakeClock,
    FakeMetrics,
    FakePromoter,
    FakeRouter,
)

NAME = "credit-scoring"
RELEASE = Release(NAME, "2", CANARY, "1", STABLE)
STABLE_ONLY = TrafficSplit(STABLE, "1")
PROMOTED = TrafficSplit(CANARY, "2")


@pytest.fixture
def fast(params: Params) -> Params:
    """Short, round numbers: interval 10 s, deadline 40 s per step, threshold 2."""
    canary = params.canary.model_copy(
        update={
            "interval_seconds": 10.0,
            "progress_deadline_seconds": 40.0,
            "rollback_attempts": 3,
            "rollback_retry_seconds": 1.0,
        }
    )
    return params.model_copy(update={"canary": canary})


class World:
    """One controller wired to fakes, with its run folder."""

    def __init__(self, params: Params, tmp_path: Path) -> None:
        self.params = params
        self.dir = tmp_path / "run"
        self.clock = FakeClock()
        self.metrics = FakeMetrics()
        self.router = FakeRouter()
        self.promoter = FakePromoter()
        self.smoked: list[Release] = []

    def smoke(self, release: Release) -> None:
        self.smoked.append(release)

    def controller(self, **overrides: Any) -> CanaryController:
        options: dict[str, Any] = {
            "smoke": self.smoke,
            "sleep": self.clock.sleep,
            "clock": self.clock,
            "plot": False,  # the PNG is checked once, in test_reports_explain_the_decision
        }
        options.update(overrides)
        return CanaryController(
            self.router,
            self.metrics,
            self.promoter,
            self.params,
            "staging",
            self.dir / STATE_FILE,
            self.dir,
            **options,
        )

    def run(self, release: Release = RELEASE, **overrides: Any) -> Outcome:
        return self.controller(**overrides).run(release)

    def state(self) -> dict[str, Any]:
        return dict(json.loads((self.dir / STATE_FILE).read_text()))


@pytest.fixture
def world(fast: Params, tmp_path: Path) -> World:
    return World(fast, tmp_path)


def weights(router: FakeRouter) -> list[int]:
    return [s.canary_weight for s in router.applied]


def test_good_canary_is_promoted_through_every_step(world: World) -> None:
    outcome = world.run()
    assert outcome.promoted and outcome.phase == Phase.SUCCEEDED
    assert weights(world.router)[:4] == [5, 25, 50, 100]
    assert world.router.applied[-1] == PROMOTED
    assert world.promoter.calls == [
        ("record_image", NAME, "2", CANARY),
        ("record_image", NAME, "1", STABLE),
        ("promote", NAME, "2"),
    ]
    assert outcome.analyses == 4
    assert outcome.duration_s == pytest.approx(40.0)
    assert outcome.reason == "all 4 steps passed"
    # At 100 % stable gets no traffic: its side is read over the window before that step.
    last = world.state()["history"][-1]
    assert last["weight"] == 100 and last["analysis"]["stable_offset_s"] == 10
    assert all(h["analysis"]["stable_offset_s"] == 0 for h in world.state()["history"][:3])


@pytest.mark.parametrize(
    ("cause", "check"),
    [
        ({"errors": 80.0}, "error_rate"),
        ({"p99_s": 0.3}, "p99_latency"),
        ({"scores": SHIFTED_SCORES}, "score_psi"),
    ],
)
def test_bad_canary_rolls_back_for_each_cause(
    world: World, cause: dict[str, Any], check: str
) -> None:
    for key, value in cause.items():
        setattr(world.metrics.tracks["canary"], key, value)
    outcome = world.run()
    assert outcome.phase == Phase.FAILED and not outcome.promoted
    assert world.router.live == STABLE_ONLY
    assert weights(world.router) == [5, 0]  # never advanced past the first step
    assert check in outcome.reason and "failed 2 times" in outcome.reason
    assert world.promoter.kinds() == ["record_image", "record_image", "reject"]
    assert world.promoter.calls[-1][:3] == ("reject", NAME, "2")
    assert world.promoter.calls[-1][3] == outcome.reason
    assert world.state()["failures"] == {check: 2}


def test_failures_count_in_total_across_steps_not_consecutively(world: World) -> None:
    """One failure at 5 %, passes, then one more at 50 %: the threshold (2) is reached."""
    plan = iter(["fail", "pass", "pass", "fail"])

    def flip(metrics: FakeMetrics) -> None:
        if len(metrics.queries) % 8 == 1:  # first query of each analysis
            metrics.tracks["canary"].errors = 80.0 if next(plan) == "fail" else None

    world.metrics.before_query = flip
    outcome = world.run()
    assert outcome.phase == Phase.FAILED
    assert weights(world.router) == [5, 25, 50, 0]
    assert "error_rate failed 2 times" in outcome.reason
    assert "at 50%" in outcome.reason


def test_inconclusive_extends_the_step_then_rolls_back_at_the_deadline(world: World) -> None:
    world.metrics.tracks["canary"].requests = 3.0
    outcome = world.run()
    assert outcome.phase == Phase.FAILED
    assert outcome.analyses == 4  # 40 s deadline / 10 s interval
    assert "not passed within 40s" in outcome.reason
    assert "too few requests" in outcome.reason
    assert weights(world.router) == [5, 0]
    assert world.state()["failures"] == {}


def test_traffic_arriving_late_passes_the_step(world: World) -> None:
    world.metrics.tracks["canary"].requests = 3.0

    def traffic_arrives(metrics: FakeMetrics) -> None:
        if len(metrics.queries) > 16:  # after two inconclusive analyses
            metrics.tracks["canary"].requests = 500.0

    world.metrics.before_query = traffic_arrives
    outcome = world.run()
    assert outcome.promoted
    verdicts = [h["analysis"]["verdict"] for h in world.state()["history"]]
    assert verdicts == ["inconclusive", "inconclusive", "passed", "passed", "passed", "passed"]


def test_prometheus_down_rolls_back(world: World) -> None:
    def prometheus_stops(metrics: FakeMetrics) -> None:
        metrics.down = len(metrics.queries) > 8  # up for the first analysis only

    world.metrics.before_query = prometheus_stops
    outcome = world.run()
    assert outcome.phase == Phase.FAILED
    assert weights(world.router) == [5, 25, 0]
    assert outcome.reason.startswith(
        "at 25%: requests failed 2 times, error_rate failed 2 times, p99_latency failed 2 times,"
        " score_psi failed 2 times (threshold 2): metrics query failed: Prometheus at "
    )
    assert outcome.reason.count("unreachable") == 1  # one cause, said once
    assert world.router.live == STABLE_ONLY


def test_router_failure_on_a_step_rolls_back(world: World) -> None:
    world.router.fail = 1  # the first step's apply fails; the rollback's apply works
    outcome = world.run()
    assert outcome.phase == Phase.FAILED
    assert "router failed to apply step 1 (5%)" in outcome.reason
    assert world.router.applied == [STABLE_ONLY]


def test_router_failure_during_rollback_is_retried(world: World) -> None:
    world.metrics.tracks["canary"].errors = 500.0

    def break_router(metrics: FakeMetrics) -> None:
        world.router.fail = 2  # the next two applies fail: the rollback's first two tries

    world.metrics.before_query = break_router
    outcome = world.run()
    assert outcome.phase == Phase.FAILED
    assert world.router.live == STABLE_ONLY
    assert world.clock.slept[-2:] == [1.0, 1.0]  # rollback_retry_seconds between attempts


def test_rollback_that_keeps_failing_is_loud_and_resumable(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.metrics.tracks["canary"].errors = 500.0
    world.metrics.before_query = lambda m: setattr(world.router, "fail", 99)
    with pytest.raises(RollbackFailed, match="ROLLBACK FAILED after 3 attempts") as raised:
        world.run()
    assert "traffic may still go 5% to canary" in str(raised.value)
    assert f"Apply stable {STABLE}" in str(raised.value)
    assert [r.levelname for r in caplog.records].count("ERROR") == 3
    assert world.state()["phase"] == "rolling_back"
    assert world.router.live.canary_weight == 5  # nothing pretended otherwise
    assert "reject" not in world.promoter.kinds()  # not before traffic is back on stable
    summary = (world.dir / "canary-summary.md").read_text()
    assert "ROLLING BACK (not finished)" in summary

    world.router.fail = 0
    world.metrics.before_query = None
    outcome = world.controller().resume()
    assert outcome.phase == Phase.FAILED
    assert world.router.live == STABLE_ONLY
    assert world.promoter.kinds()[-1] == "reject"


def test_interrupt_while_progressing_rolls_back(world: World) -> None:
    def interrupted(seconds: float) -> None:
        if len(world.clock.slept) == 1:  # during the second interval (25 %)
            raise KeyboardInterrupt
        world.clock.sleep(seconds)

    outcome = world.run(sleep=interrupted)
    assert outcome.phase == Phase.FAILED
    assert outcome.reason == "interrupted (SIGINT) while progressing"
    assert weights(world.router) == [5, 25, 0]
    assert world.router.live == STABLE_ONLY
    assert world.promoter.kinds()[-1] == "reject"


def test_promotion_router_failure_falls_back_to_rollback(world: World) -> None:
    def fail_after_last_step(metrics: FakeMetrics) -> None:
        if len(metrics.queries) == 32:  # last query of the last analysis
            world.router.fail = 3  # every attempt to apply the promoted split

    world.metrics.before_query = fail_after_last_step
    outcome = world.run()
    assert outcome.phase == Phase.FAILED
    assert outcome.reason.startswith("promotion failed")
    assert world.router.live == STABLE_ONLY
    assert "promote" not in world.promoter.kinds()


def test_first_deploy_smoke_tests_then_goes_straight_to_stable(world: World) -> None:
    world.router.live = TrafficSplit(STABLE, "1")  # ignored: no stable in the release
    first = Release(NAME, "1", CANARY)
    outcome = world.run(first)
    assert outcome.promoted
    assert world.smoked == [first]
    assert world.router.applied == [PROMOTED.__class__(CANARY, "1")]
    assert world.metrics.queries == []  # nothing to compare with
    assert world.promoter.kinds() == ["record_image", "promote"]


def test_first_deploy_failed_smoke_moves_nothing(world: World) -> None:
    def broken(release: Release) -> None:
        raise RuntimeError("/ready answered 503 for 60 s")

    outcome = world.run(Release(NAME, "1", CANARY), smoke=broken)
    assert outcome.phase == Phase.FAILED
    assert world.router.applied == []
    assert "smoke test failed: /ready answered 503" in outcome.reason
    assert world.promoter.kinds() == ["record_image", "reject"]


def test_first_deploy_needs_a_smoke_test(world: World) -> None:
    with pytest.raises(ModelopsError, match="smoke test is required"):
        world.run(Release(NAME, "1", CANARY), smoke=None)
    assert world.router.applied == []


def test_refuses_a_release_whose_stable_is_not_live(world: World) -> None:
    world.router.live = TrafficSplit(STABLE, "7")
    with pytest.raises(ModelopsError, match="rollback would go to the wrong place"):
        world.run()
    assert world.router.applied == [] and not (world.dir / STATE_FILE).exists()


def test_refuses_to_start_while_another_canary_is_unfinished(world: World) -> None:
    world.metrics.tracks["canary"].errors = 500.0
    world.metrics.before_query = lambda m: setattr(world.router, "fail", 99)
    with pytest.raises(RollbackFailed):
        world.run()
    world.router.fail = 0
    with pytest.raises(StateError, match="still rolling_back"):
        world.run(Release(NAME, "3", CANARY, "1", STABLE))


def test_release_validation() -> None:
    with pytest.raises(ModelopsError, match="together"):
        Release(NAME, "2", CANARY, "1", None)
    with pytest.raises(ModelopsError, match="already stable"):
        Release(NAME, "1", CANARY, "1", STABLE)
    with pytest.raises(ModelopsError, match="not pinned by digest"):
        Release(NAME, "2", "credit-scoring:latest", "1", STABLE)


# Resume ---------------------------------------------------------------------------------


class Killed(BaseException):
    """Stands for the process being killed at a given point (not an Exception: nothing
    in the controller may catch it)."""


def kill_after(world: World, applies: int) -> None:
    """Make the router 'kill' the controller right after its n-th successful apply."""
    original = world.router.apply

    def apply(split: TrafficSplit) -> None:
        original(split)
        if len(world.router.applied) == applies:
            raise Killed

    world.router.apply = apply  # type: ignore[method-assign]


def restart(world: World) -> Outcome:
    """A new controller process: fresh router object state kept (traffic stays where it was)."""
    world.router.apply = FakeRouter.apply.__get__(world.router)  # type: ignore[method-assign]
    return world.controller().resume()


def test_resume_in_progressing_reapplies_the_step_and_finishes(world: World) -> None:
    kill_after(world, 2)  # killed right after applying 25 %
    with pytest.raises(Killed):
        world.run()
    saved = load_state(world.dir / STATE_FILE)
    assert saved.phase == Phase.PROGRESSING and saved.step_index == 1
    outcome = restart(world)
    assert outcome.promoted
    assert weights(world.router)[:5] == [5, 25, 25, 50, 100]  # 25 % applied again
    assert [e["message"] for e in world.state()["events"]].count("resumed in phase progressing")


def test_resume_after_the_step_deadline_rolls_back(world: World) -> None:
    kill_after(world, 1)
    with pytest.raises(Killed):
        world.run()
    world.clock.now += 3600  # the controller stayed dead for an hour
    outcome = restart(world)
    assert outcome.phase == Phase.FAILED
    assert "step 1 (5%) not passed within 40s" in outcome.reason
    assert world.router.live == STABLE_ONLY
    assert weights(world.router) == [5, 0]  # not re-applied before rolling back


def test_resume_in_promoting_finishes_idempotently(world: World) -> None:
    kill_after(world, 5)  # killed right after the promoted split was applied
    with pytest.raises(Killed):
        world.run()
    assert world.state()["phase"] == "promoting"
    outcome = restart(world)
    assert outcome.promoted
    assert world.router.applied[-2:] == [PROMOTED, PROMOTED]
    assert world.promoter.kinds().count("promote") == 1


def test_resume_in_rolling_back_finishes_idempotently(world: World) -> None:
    world.metrics.tracks["canary"].errors = 500.0
    kill_after(world, 2)  # the rollback's apply is the second one
    with pytest.raises(Killed):
        world.run()
    assert world.state()["phase"] == "rolling_back"
    outcome = restart(world)
    assert outcome.phase == Phase.FAILED
    assert world.router.applied[-2:] == [STABLE_ONLY, STABLE_ONLY]
    assert world.promoter.kinds().count("reject") == 1


def test_resume_in_initializing_starts_the_steps(world: World) -> None:
    class Dies(FakePromoter):
        def record_image(self, name: str, version: str, image: str) -> None:
            raise Killed

    world.promoter = Dies()
    with pytest.raises(Killed):
        world.run()
    assert world.state()["phase"] == "initializing"
    world.promoter = FakePromoter()
    outcome = world.controller().resume()
    assert outcome.promoted
    assert weights(world.router)[:4] == [5, 25, 50, 100]


@pytest.mark.parametrize("phase", ["succeeded", "failed"])
def test_resume_when_finished_does_nothing(world: World, phase: str) -> None:
    if phase == "failed":
        world.metrics.tracks["canary"].errors = 500.0
    world.run()
    applied, calls = list(world.router.applied), list(world.promoter.calls)
    outcome = world.controller().resume()
    assert outcome.phase.value == phase
    assert world.router.applied == applied and world.promoter.calls == calls


def test_resume_without_state_is_a_clear_error(world: World) -> None:
    with pytest.raises(StateError, match="nothing to resume"):
        world.controller().resume()
    world.dir.mkdir()
    (world.dir / STATE_FILE).write_text("{not json")
    with pytest.raises(StateError, match="not valid JSON"):
        world.controller().resume()


def test_state_file_is_written_after_every_transition(world: World) -> None:
    phases: list[str] = []
    original = save_state

    def spy(path: Path, state: Any) -> None:
        original(path, state)
        phases.append(json.loads(Path(path).read_text())["phase"])

    import modelops.deploy.controller as controller_module

    controller_module.save_state = spy  # type: ignore[assignment]
    try:
        world.run()
    finally:
        controller_module.save_state = original  # type: ignore[assignment]
    assert phases[0] == "initializing"
    assert phases[-1] == "succeeded"
    ordered = list(dict.fromkeys(phases))
    assert ordered == ["initializing", "progressing", "promoting", "succeeded"]
    assert not list(world.dir.glob(".*.tmp"))  # atomic writes leave no temporary files


# Entry points and reports ---------------------------------------------------------------


def test_run_and_resume_canary_entry_points(world: World) -> None:
    world.metrics.tracks["canary"].errors = 500.0
    outcome = run_canary(
        RELEASE,
        world.router,
        world.metrics,
        world.promoter,
        world.params,
        "staging",
        world.dir,
        sleep=world.clock.sleep,
        clock=world.clock,
    )
    assert outcome.phase == Phase.FAILED
    assert outcome.state_file == world.dir / STATE_FILE
    again = resume_canary(world.router, world.metrics, world.promoter, world.params, world.dir)
    assert again.phase == Phase.FAILED and again.reason == outcome.reason


def test_reports_explain_the_decision(world: World) -> None:
    world.metrics.tracks["canary"].p99_s = 0.3
    outcome = world.run(plot=True)
    summary = outcome.reports["summary"].read_text()
    assert "ROLLED BACK" in summary
    assert "| check | canary | stable | threshold | verdict | note |" in summary
    assert "| p99_latency | 300.0 ms | 8.0 ms | <= 58.0 ms | failed |" in summary
    assert summary.count("### Analysis") == 2

    families = {
        f.name: f for f in text_string_to_metric_families(outcome.reports["metrics"].read_text())
    }

    def value(name: str, **labels: str) -> float:
        for s in families[name].samples:
            if all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
        raise AssertionError(f"{name} {labels} not found")

    assert value("modelops_canary_weight", env="staging", model=NAME) == 0
    assert value("modelops_canary_phase", phase="failed") == 1
    assert value("modelops_canary_phase", phase="succeeded") == 0
    assert value("modelops_canary_check_passed", check="p99_latency") == 0
    assert value("modelops_canary_check_passed", check="error_rate") == 1
    assert value("modelops_canary_check_failures", check="p99_latency") == 2
    assert value("modelops_canary_decision_timestamp_seconds", decision="rolled_back") == (
        world.clock.now
    )

    png = outcome.reports["timeline"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000

    text = render_timeline_text(load_state(world.dir / STATE_FILE))
    assert text.splitlines()[0].startswith("+  10.0s  step 1    5%  failed")
    assert text.splitlines()[-1].startswith("decision: ROLLED BACK")


def test_prom_file_tracks_the_live_weight_during_the_canary(world: World) -> None:
    seen: list[float] = []

    def read_weight(metrics: FakeMetrics) -> None:
        if len(metrics.queries) % 8 == 1:
            text = (world.dir / "canary.prom").read_text()
            for family in text_string_to_metric_families(text):
                if family.name == "modelops_canary_weight":
                    seen.append(family.samples[0].value)

    world.metrics.before_query = read_weight
    world.run()
    assert seen == [5, 25, 50, 100]


def test_timings_from_first_canary_traffic(world: World) -> None:
    outcome = world.run()
    state = load_state(outcome.state_file)
    assert timings(state) == {"traffic_to_promoted_s": 40.0, "traffic_to_decision_s": 40.0}

    bad = World(world.params, world.dir.parent / "bad")
    bad.metrics.tracks["canary"].errors = 500.0
    state = load_state(bad.run().state_file)
    assert timings(state) == {"traffic_to_stable_s": 20.0, "traffic_to_decision_s": 20.0}
    assert "| canary traffic to all traffic back on stable | 20.0 s |" in (
        (bad.dir / "canary-summary.md").read_text()
    )


def test_registry_failure_on_promotion_is_loud_and_resumable(world: World) -> None:
    class RegistryDown(FakePromoter):
        def promote(self, name: str, version: str) -> None:
            raise ConnectionError("mlflow server: connection refused")

    world.promoter = RegistryDown()
    with pytest.raises(PromotionFailed, match="serves 100 % as stable, but the registry") as e:
        world.run()
    assert "connection refused" in str(e.value)
    assert world.state()["phase"] == "promoting"
    assert world.router.live == PROMOTED  # traffic is on the version that passed

    world.promoter = FakePromoter()
    outcome = world.controller().resume()
    assert outcome.promoted
    assert world.promoter.kinds() == ["promote"]


@pytest.mark.parametrize(
    "cause", [{"errors": 80.0}, {"p99_s": 0.3}, {"scores": SHIFTED_SCORES}, {"down": True}]
)
def test_shipped_cadence_rolls_back_within_a_minute(
    params: Params, tmp_path: Path, cause: dict[str, Any]
) -> None:
    """params.yaml as shipped: a hard failure is checked every 10 s over a 20 s window, so
    two failed checks (the threshold) come 20 s after the canary's first traffic."""
    world = World(params, tmp_path)
    for key, value in cause.items():
        if key == "down":
            world.metrics.down = True
        else:
            setattr(world.metrics.tracks["canary"], key, value)
    outcome = world.run()
    assert outcome.phase == Phase.FAILED
    times = timings(load_state(world.dir / STATE_FILE))
    assert times["traffic_to_stable_s"] <= 2 * params.canary.check_interval_seconds
    assert params.canary.check_interval_seconds * 2 <= 60 / 2  # margin for scrape lag


def test_shipped_cadence_watches_a_good_step_for_its_whole_interval(
    params: Params, tmp_path: Path
) -> None:
    world = World(params, tmp_path)
    outcome = world.run()
    assert outcome.promoted
    history = world.state()["history"]
    c = params.canary
    per_step = round(c.interval_seconds / c.check_interval_seconds)
    assert len(history) == len(c.steps) * per_step
    first = history[0]["analysis"]
    # The first check of a step reads only the step's own traffic; the hard window then slides.
    assert first["window_s"] == c.check_interval_seconds
    assert history[1]["analysis"]["window_s"] == c.check_window_seconds
    assert history[per_step - 1]["analysis"]["score_window_s"] == c.interval_seconds


NEWER = Release(NAME, "3", "localhost/credit-scoring@sha256:" + "c" * 64, "1", STABLE)


def _lock_taken_by_newer_after_first_analysis(world: World) -> None:
    def take(metrics: FakeMetrics) -> None:
        if len(metrics.queries) == 9:  # the first query of the second analysis
            write_lock(world.dir / LOCK_FILE, Lock("newer-run", "3", 1, world.clock()))

    world.metrics.before_query = take


def test_running_canary_aborts_when_a_newer_candidate_takes_the_lock(world: World) -> None:
    _lock_taken_by_newer_after_first_analysis(world)
    outcome = world.run()
    assert outcome.phase == Phase.FAILED
    assert outcome.reason.startswith("superseded by v3")
    assert world.router.live == STABLE_ONLY  # an abort always ends with stable at 100 %
    assert "reject" not in world.promoter.kinds()  # superseded, not judged bad
    assert world.state()["superseded_by"] == "3"


def test_newer_candidate_takes_over_from_a_dead_controller(world: World) -> None:
    """The old controller died mid-step (its state says progressing at 25 %): the newer
    candidate waits for it, rolls its canary back itself, keeps its state and starts fresh."""
    old = world.controller()
    world.metrics.before_query = lambda m: (_ for _ in ()).throw(SystemExit("killed"))
    with pytest.raises(SystemExit):
        old.run(RELEASE)
    world.metrics.before_query = None
    assert load_state(world.dir / STATE_FILE).phase == Phase.PROGRESSING
    assert world.router.live.canary_weight == 5
    outcome = world.controller(supersede_wait_s=5.0).run(NEWER)
    assert outcome.promoted and outcome.release.canary_version == "3"
    archived = load_state(world.dir / "canary-state.superseded-v2.json")
    assert archived.phase == Phase.FAILED and archived.superseded_by == "3"
    assert archived.reason.startswith("superseded by v3")
    assert archived.weights[-1][1] == 0  # it put stable back at 100 % before v3 moved
    splits = [s.canary_model_version for s in world.router.applied]
    assert splits[:3] == ["2", None, "3"]
    assert ("reject", NAME, "2") not in [c[:3] for c in world.promoter.calls]


def test_an_older_or_the_same_candidate_does_not_supersede(world: World) -> None:
    world.metrics.before_query = lambda m: (_ for _ in ()).throw(SystemExit("killed"))
    with pytest.raises(SystemExit):
        world.run(NEWER)
    world.metrics.before_query = None
    for release in (RELEASE, NEWER):
        with pytest.raises(StateError, match="is not newer"):
            world.run(release)


def test_controller_error_while_progressing_rolls_back(world: World) -> None:
    def broken(metrics: FakeMetrics) -> None:
        if len(metrics.queries) > 9:
            raise RuntimeError("unexpected answer")

    world.metrics.before_query = broken
    outcome = world.run()
    assert outcome.phase == Phase.FAILED
    assert "controller error while progressing (RuntimeError: unexpected answer)" in (
        outcome.reason
    )
    assert world.router.live == STABLE_ONLY


def test_failed_check_names_its_query_value_and_threshold(world: World) -> None:
    world.metrics.tracks["canary"].p99_s = 0.3
    reason = world.run().reason
    assert "p99_latency measured 300, threshold 58" in reason
    assert "query histogram_quantile(0.99, sum by (le) (rate(" in reason
    assert 'track="canary", env="staging"' in reason


@pytest.mark.parametrize("missing", ["requests", "p99_s", "scores"])
def test_no_data_is_never_a_pass(world: World, missing: str) -> None:
    setattr(world.metrics.tracks["canary"], missing, None)
    outcome = world.run()
    assert not outcome.promoted
    assert weights(world.router) == [5, 0]
    verdicts = {h["analysis"]["verdict"] for h in world.state()["history"]}
    assert "passed" not in verdicts
