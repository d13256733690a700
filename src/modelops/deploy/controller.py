"""The canary controller: a small state machine that moves traffic step by step.

    initializing -> progressing (step 0 .. n-1) -> promoting -> succeeded
                         |                           |
                         +------> rolling_back <-----+ (router failed) -> failed

- initializing: record the images of both versions in the registry. A first deploy (no stable
  version) runs the smoke test (/ready and a few predictions, a callable the caller gives) and
  goes straight to promoting; a failed smoke test rolls back (nothing was moved).
- progressing: per step, the router applies the canary weight; every
  `canary.check_interval_seconds` the controller analyses the traffic (see analysis.py: 5xx,
  p99 and request counts over a short sliding window, the score PSI over the step so far),
  so a hard failure is caught within a few checks. All checks passed once the step has run
  `canary.interval_seconds`: next step (after the last one: promoting). A failed check
  counts one failure for that check; a check reaching
  `canary.failure_threshold` failures in this release (counted in total over all steps, not
  consecutively, so a flapping canary is caught too) rolls back. Failed below the threshold
  or inconclusive: the step is analysed again, until `canary.progress_deadline_seconds`
  after the step began; past it, the canary rolls back.
- promoting: stable = the canary's image and version at 100 %, canary removed; then the
  registry's `champion` alias moves (Promoter.promote).
- rolling_back: stable back to 100 %, canary removed, retried `canary.rollback_attempts`
  times (each failure logged as an error); if the router still fails, RollbackFailed is
  raised and the state stays rolling_back for `resume()`. Then the version is tagged
  `rejected` with the reason (Promoter.reject) and the phase is failed.

An interrupt (Ctrl-C, SIGINT) while progressing rolls back rather than leave traffic split
with nobody watching; a second one, or SIGKILL, leaves the state file for `resume()`.

The state is saved (atomically) after every transition and every analysis. `resume()` reads
it and goes on: progressing re-applies the current step and keeps analysing (or rolls back if
the step's deadline passed meanwhile); promoting and rolling_back repeat their actions, which
are idempotent; succeeded and failed have nothing left to do.

Time comes from `clock` (wall time, so it survives restarts) and waiting from `sleep`; both
are injectable.
"""

from __future__ import annotations

import logging
import math
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelops.config import Params
from modelops.deploy.analysis import Analysis, analyse
from modelops.deploy.gitops import TrafficSplit
from modelops.deploy.metrics import MetricProvider
from modelops.deploy.promoter import Promoter
from modelops.deploy.replay import RECORD_FILE, RecordingMetrics, append_record
from modelops.deploy.report import write_prom, write_reports
from modelops.deploy.router import Router
from modelops.deploy.shadow import ShadowSource, analyse_shadow
from modelops.deploy.state import (
    CanaryState,
    Lock,
    Phase,
    Release,
    StateError,
    StepRecord,
    load_state,
    read_lock,
    save_state,
    write_lock,
)
from modelops.errors import ModelopsError, RouterError

__all__ = [
    "CanaryController",
    "Outcome",
    "Phase",
    "PromotionFailed",
    "Release",
    "RollbackFailed",
    "SmokeTest",
    "StateError",
    "resume_canary",
    "run_canary",
]

log = logging.getLogger(__name__)

STATE_FILE = "canary-state.json"
LOCK_FILE = "canary.lock"
SmokeTest = Callable[[Release], None]  # raises (any exception) when the service is not fit


class RollbackFailed(ModelopsError, RuntimeError):
    """Traffic could not be put back on stable: a person must act (the message says how)."""


class PromotionFailed(ModelopsError, RuntimeError):
    """The canary passed, but recording the promotion failed; `resume()` finishes it."""


@dataclass(frozen=True)
class Outcome:
    """How a canary ended, and where its state and reports are."""

    phase: Phase
    release: Release
    reason: str
    state_file: Path
    reports: dict[str, Path] = field(default_factory=dict)
    analyses: int = 0
    duration_s: float = 0.0

    @property
    def promoted(self) -> bool:
        return self.phase == Phase.SUCCEEDED


class CanaryController:
    """Runs one release through the canary steps (see the module docstring)."""

    def __init__(
        self,
        router: Router,
        metrics: MetricProvider,
        promoter: Promoter,
        params: Params,
        env: str,
        state_file: Path,
        report_dir: Path,
        *,
        smoke: SmokeTest | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        plot: bool = True,
        supersede_wait_s: float | None = None,
        record: Path | None = None,
        shadow: ShadowSource | None = None,
        shadow_skip_reason: str = "no prediction-log source was given",
    ) -> None:
        self.router = router
        self.shadow = shadow  # both tracks' prediction logs, for the shadow phase
        self.shadow_skip_reason = shadow_skip_reason
        # Every analysis's answers go to `record` (JSON lines) for `replay`.
        self.recorder = RecordingMetrics(metrics) if record is not None else None
        self.record = record
        self.metrics: MetricProvider = self.recorder or metrics
        self.promoter = promoter
        self.params = params
        self.env = env
        self.state_file = Path(state_file)
        self.report_dir = Path(report_dir)
        self.smoke = smoke
        self.sleep = sleep
        self.clock = clock
        self.plot = plot  # False: no timeline.png (matplotlib takes ~0.5 s per write)
        self._applied = False  # has this process applied the current step yet?
        self.owner = uuid.uuid4().hex[:12]  # this controller run, in the lock and the state
        self.lock_file = self.state_file.with_name(LOCK_FILE)
        # How long a newer candidate waits for the old controller to abort by itself.
        self.supersede_wait_s = (
            supersede_wait_s
            if supersede_wait_s is not None
            else params.canary.check_every_s + params.canary.query_timeout_seconds * 8 + 30
        )

    # Entry points ---------------------------------------------------------------------------

    def run(self, release: Release) -> Outcome:
        """Start a canary of `release`. Refuses while another one's state is not finished."""
        if self.state_file.exists():
            previous = load_state(self.state_file)
            if not previous.phase.terminal:
                running = previous.release.canary_version
                deciding = previous.phase in (Phase.PROMOTING, Phase.ROLLING_BACK)
                if deciding or not is_newer(release.canary_version, running):
                    raise StateError(
                        f"{self.state_file}: a canary of {previous.release.model_name} version "
                        f"{running} is still {previous.phase.value}"
                        + (
                            ""
                            if deciding
                            else f", and version {release.canary_version} is not newer"
                        )
                        + "; finish it with resume() "
                        "(`modelops deploy canary --resume`) before starting another"
                    )
                self._supersede(previous, release)
        self._check_live_stable(release)
        self._take_lock(release.canary_version)
        if self.record is not None:
            self.record.unlink(missing_ok=True)  # one recording per release
        now = self.clock()
        state = CanaryState(
            release=release,
            env=self.env,
            steps=list(self.params.canary.steps),
            started_at=now,
            owner=self.owner,
        )
        self._event(state, f"canary of {release.model_name} {release.canary_version} started")
        return self._drive(state)

    def resume(self) -> Outcome:
        """Continue the canary saved in the state file (see the module docstring)."""
        state = load_state(self.state_file)
        if state.phase.terminal:
            log.info("%s: canary already %s, nothing to do", self.state_file, state.phase.value)
            return self._outcome(state)
        lock = read_lock(self.lock_file)
        if lock is None or lock.canary_version == state.release.canary_version:
            self._take_lock(state.release.canary_version)
            state.owner = self.owner
        # else: a newer candidate took the run over; the next check aborts this canary.
        self._event(state, f"resumed in phase {state.phase.value}")
        self._applied = False
        return self._drive(state)

    # The machine ----------------------------------------------------------------------------

    def _drive(self, state: CanaryState) -> Outcome:
        handlers: dict[Phase, Callable[[CanaryState], None]] = {
            Phase.INITIALIZING: self._initialize,
            Phase.SHADOWING: self._shadowing,
            Phase.PROGRESSING: self._progress,
            Phase.PROMOTING: self._promote,
            Phase.ROLLING_BACK: self._roll_back,
        }
        try:
            while not state.phase.terminal:
                try:
                    handlers[state.phase](state)
                except KeyboardInterrupt:
                    if state.phase not in (Phase.PROGRESSING, Phase.SHADOWING):
                        raise  # the state file says what is left; resume() finishes it
                    # Stopped by hand while traffic is split: nobody would watch the canary.
                    log.warning("interrupted while progressing: rolling back")
                    self._transition(
                        state, Phase.ROLLING_BACK, "interrupted (SIGINT) while progressing"
                    )
                except (StateError, RollbackFailed, PromotionFailed):
                    raise
                except Exception as error:
                    if state.phase not in (Phase.PROGRESSING, Phase.SHADOWING):
                        raise
                    # A bug or an unexpected answer must not leave traffic split unwatched.
                    log.exception("controller error while progressing: rolling back")
                    self._transition(
                        state,
                        Phase.ROLLING_BACK,
                        f"controller error while progressing ({type(error).__name__}: {error})",
                    )
        finally:
            write_reports(state, self.report_dir, self.params, plot=self.plot)
        return self._outcome(state)

    def _initialize(self, state: CanaryState) -> None:
        release = state.release
        self.promoter.record_image(release.model_name, release.canary_version, release.canary_image)
        if release.stable_version is not None and release.stable_image is not None:
            self.promoter.record_image(
                release.model_name, release.stable_version, release.stable_image
            )
        if not release.first_deploy:
            state.step_index, state.step_started_at = 0, None
            shadow = self.params.canary.shadow
            if shadow.enabled and self.shadow is not None:
                self._transition(
                    state,
                    Phase.SHADOWING,
                    f"shadow phase: {shadow.mirror_percent}% of requests mirrored to the "
                    "candidate, its answers discarded",
                )
                return
            if shadow.enabled:
                self._event(state, f"shadow phase skipped: {self.shadow_skip_reason}")
            self._transition(state, Phase.PROGRESSING, "analysis starts at the first step")
            return
        if self.smoke is None:
            raise ModelopsError(
                "first deploy (no stable version): a smoke test is required before the model "
                "goes to stable; pass smoke=... (the canary command does)"
            )
        try:
            self.smoke(release)
        except Exception as error:
            self._transition(state, Phase.ROLLING_BACK, f"first deploy: smoke test failed: {error}")
            return
        self._transition(state, Phase.PROMOTING, "first deploy: smoke test passed")

    def _shadowing(self, state: CanaryState) -> None:
        """Mirror traffic to the candidate and compare its answers with stable's."""
        c, sh = self.params.canary, self.params.canary.shadow
        assert self.shadow is not None, "resume a shadow phase with the same prediction logs"
        if self._lost_lock(state):
            return
        if not self._applied:
            if state.shadow_started_at is None:
                state.shadow_started_at = self.clock()
                self._save(state)
            try:
                self.router.apply(state.release.shadow_split(sh.mirror_percent))
            except RouterError as error:
                self._transition(
                    state, Phase.ROLLING_BACK, f"router failed to start the shadow phase: {error}"
                )
                return
            self._applied = True
        self.sleep(c.check_every_s)
        if self._lost_lock(state):
            return
        now = self.clock()
        assert state.shadow_started_at is not None
        age = max(0.0, now - state.shadow_started_at)
        analysis = analyse_shadow(
            self.shadow, self.metrics, self.params, self.env, state.shadow_started_at, age
        )
        if self.recorder is not None:
            self.recorder.take()  # replay covers the canary steps' PromQL analyses
        state.history.append(StepRecord(now, -1, 0, analysis, phase="shadow"))
        log.info("shadow +%.0fs: %s - %s", age, analysis.verdict, analysis.summary())
        for name in analysis.failed:
            state.failures[name] = state.failures.get(name, 0) + 1
        over = [n for n in analysis.failed if state.failures[n] >= c.failure_threshold]
        if over:
            self._transition(
                state, Phase.ROLLING_BACK, "rejected in shadow: " + self._why(state, analysis, over)
            )
        elif analysis.verdict == "passed" and age >= sh.duration_seconds:
            self._applied = False
            self._transition(
                state,
                Phase.PROGRESSING,
                f"shadow passed after {age:.0f}s ({analysis.check('shadow_requests').canary:.0f}"
                " mirrored requests): canary steps start",
            )
        elif age >= c.progress_deadline_seconds:
            self._transition(
                state,
                Phase.ROLLING_BACK,
                f"shadow not passed within {c.progress_deadline_seconds:g}s; last analysis: "
                f"{analysis.summary()}",
            )
        else:
            self._save(state)

    def _why(self, state: CanaryState, analysis: Analysis, over: list[str]) -> str:
        """Each check over the threshold: its count, message, value, threshold and query."""
        by_message: dict[str, list[str]] = {}
        for n in over:  # one cause (e.g. Prometheus gone) is said once for all its checks
            by_message.setdefault(analysis.check(n).message, []).append(n)
        return "; ".join(
            f"{', '.join(f'{n} failed {state.failures[n]} times' for n in names)} "
            f"(threshold {self.params.canary.failure_threshold}): {message} "
            f"[{'; '.join(analysis.check(n).evidence() for n in names)}]"
            for message, names in by_message.items()
        )

    def _progress(self, state: CanaryState) -> None:
        c = self.params.canary
        weight = state.steps[state.step_index]
        if self._lost_lock(state):
            return
        if state.step_started_at is not None and self._past_deadline(state):
            self._transition(state, Phase.ROLLING_BACK, self._deadline_reason(state))
            return
        if not self._applied:
            if state.step_started_at is None:
                # Saved before the router moves: a controller killed during the apply and
                # started again later still sees this step's deadline.
                state.step_started_at = self.clock()
                self._save(state)
            try:
                self.router.apply(state.release.canary_split(weight))
            except RouterError as error:
                reason = f"router failed to apply step {state.step_index + 1} ({weight}%): {error}"
                self._transition(state, Phase.ROLLING_BACK, reason)
                return
            self._applied = True
            state.weights.append((self.clock(), weight))
            self._event(state, f"step {state.step_index + 1}/{len(state.steps)}: canary {weight}%")
        self.sleep(c.check_every_s)
        if self._lost_lock(state):
            return
        now = self.clock()
        assert state.step_started_at is not None
        age = max(0.0, now - state.step_started_at)
        offset = 0.0
        if weight == 100:
            # Stable gets no traffic now: compare with its last window before this step.
            offset = age
        # Hard checks over a short sliding window; the score PSI over the step so far.
        window = min(c.hard_window_s, age) if age > 0 else c.hard_window_s
        score_window = min(c.interval_seconds, age) if age > 0 else c.interval_seconds
        analysis = analyse(
            self.metrics, self.params, self.env, window, offset, score_window_s=score_window
        )
        if self.recorder is not None and self.record is not None:
            context = {
                "at": now, "env": self.env, "step": state.step_index, "steps": len(state.steps),
                "weight": weight, "age_s": age, "window_s": window, "stable_offset_s": offset,
                "score_window_s": score_window, "canary_version": state.release.canary_version,
            }  # fmt: skip
            append_record(self.record, context, self.recorder.take())
        state.history.append(StepRecord(now, state.step_index, weight, analysis))
        log.info(
            "step %d (%d%%) +%.0fs: %s - %s",
            state.step_index + 1,
            weight,
            age,
            analysis.verdict,
            analysis.summary(),
        )
        self._judge(state, analysis, age)

    def _judge(self, state: CanaryState, analysis: Analysis, age: float) -> None:
        c = self.params.canary
        weight = state.steps[state.step_index]
        for name in analysis.failed:
            state.failures[name] = state.failures.get(name, 0) + 1
        over = [n for n in analysis.failed if state.failures[n] >= c.failure_threshold]
        if over:
            why = self._why(state, analysis, over)
            self._transition(state, Phase.ROLLING_BACK, f"at {weight}%: {why}")
        elif analysis.verdict == "passed" and age < c.interval_seconds - 1e-6:
            self._save(state)  # healthy so far; the step is watched for its whole interval
        elif analysis.verdict == "passed":
            if state.step_index + 1 < len(state.steps):
                state.step_index += 1
                state.step_started_at = None
                self._applied = False
                self._save(state)
            else:
                self._transition(state, Phase.PROMOTING, f"all {len(state.steps)} steps passed")
        elif self._past_deadline(state):
            self._transition(state, Phase.ROLLING_BACK, self._deadline_reason(state))
        else:
            self._save(state)

    def _promote(self, state: CanaryState) -> None:
        release = state.release
        try:
            self._with_retries("apply the promoted split", lambda: self._apply_final(state))
        except RouterError as error:
            self._transition(state, Phase.ROLLING_BACK, f"promotion failed: {error}")
            return
        try:
            self._with_retries(
                "move champion",
                lambda: self.promoter.promote(release.model_name, release.canary_version),
            )
        except Exception as error:
            raise PromotionFailed(
                f"{release.model_name} {release.canary_version} serves 100 % as stable, but the "
                f"registry could not be updated ({error}); fix the registry connection and run "
                f"`modelops deploy canary --resume` (state: {self.state_file})"
            ) from error
        self._transition(state, Phase.SUCCEEDED, state.reason or "promoted", decided=True)

    def _apply_final(self, state: CanaryState) -> None:
        self.router.apply(state.release.promoted_split())
        state.weights.append((self.clock(), 100))  # all traffic on the new version

    def _roll_back(self, state: CanaryState) -> None:
        release = state.release
        if not release.first_deploy:
            try:
                self._with_retries("roll back", lambda: self._apply_stable(state))
            except RouterError as error:
                state.events.append(
                    {"at": self.clock(), "phase": state.phase.value, "message": str(error)}
                )
                self._save(state)
                split = release.stable_split()
                raise RollbackFailed(
                    f"ROLLBACK FAILED after {self.params.canary.rollback_attempts} attempts: "
                    f"traffic may still go {state.weight}% to canary {release.canary_image}. "
                    f"Last router error: {error}. Apply stable {split.stable_image} (model "
                    f"{split.stable_model_version}) at 100 % now, or fix the router and run "
                    f"`modelops deploy canary --resume` (state: {self.state_file})"
                ) from error
        if state.superseded_by is not None:  # not judged bad: nothing to tag rejected
            self._transition(state, Phase.FAILED, state.reason, decided=True)
            return
        try:
            self._with_retries(
                "tag the version rejected",
                lambda: self.promoter.reject(
                    release.model_name, release.canary_version, state.reason
                ),
            )
        except Exception as error:
            raise RollbackFailed(
                f"traffic is back on stable, but tagging {release.model_name} "
                f"{release.canary_version} rejected failed ({error}); run `modelops deploy "
                f"canary --resume` (state: {self.state_file}) once the registry answers"
            ) from error
        self._transition(state, Phase.FAILED, state.reason, decided=True)

    def _apply_stable(self, state: CanaryState) -> None:
        self.router.apply(state.release.stable_split())
        state.weights.append((self.clock(), 0))

    # Ownership: a newer candidate supersedes a running canary ---------------------------------

    def _take_lock(self, version: str) -> None:
        write_lock(self.lock_file, Lock(self.owner, version, os.getpid(), self.clock()))

    def _lost_lock(self, state: CanaryState) -> bool:
        """True (and rolling back) when a newer candidate took this run folder over."""
        lock = read_lock(self.lock_file)
        if lock is None or lock.owner == self.owner or not state.owner:
            return False
        if lock.canary_version == state.release.canary_version:
            raise StateError(
                f"another controller (run {lock.owner}, pid {lock.pid}) resumed the canary of "
                f"version {lock.canary_version}; this one stops and leaves it to that one"
            )
        state.superseded_by = lock.canary_version
        self._transition(
            state, Phase.ROLLING_BACK, f"superseded by v{lock.canary_version}: analysis aborted"
        )
        return True

    def _supersede(self, previous: CanaryState, release: Release) -> None:
        """Abort the running canary `previous` for the newer `release`, then start fresh.

        The lock names the new version at once; the old controller sees it at its next check
        and rolls back to stable. If it does not finish within `supersede_wait_s` (it died),
        this controller rolls the old canary back itself. The old state is kept beside the new
        one as canary-state.superseded-v<old>.json.
        """
        old = previous.release.canary_version
        log.warning(
            "version %s supersedes the running canary of version %s", release.canary_version, old
        )
        self._take_lock(release.canary_version)
        deadline = self.clock() + self.supersede_wait_s
        state = previous
        while not state.phase.terminal and self.clock() < deadline:
            self.sleep(1.0)
            state = load_state(self.state_file)
        if not state.phase.terminal:
            state.superseded_by = release.canary_version
            state.phase = Phase.ROLLING_BACK
            state.reason = (
                f"superseded by v{release.canary_version}: analysis aborted (its controller "
                f"did not answer within {self.supersede_wait_s:g}s)"
            )
            self._event(state, state.reason)
            self._roll_back(state)
            write_reports(state, self.report_dir, self.params, plot=self.plot)
        archive = self.state_file.with_name(f"canary-state.superseded-v{old}.json")
        os.replace(self.state_file, archive)

    # Helpers --------------------------------------------------------------------------------

    def _with_retries(self, what: str, action: Callable[[], None]) -> None:
        """Run `action`, retrying; every failure is logged as an error; the last one raises."""
        c = self.params.canary
        for attempt in range(1, c.rollback_attempts + 1):
            try:
                action()
                return
            except Exception as error:
                log.error("%s: attempt %d/%d failed: %s", what, attempt, c.rollback_attempts, error)
                if attempt == c.rollback_attempts:
                    raise
                self.sleep(c.rollback_retry_seconds)

    def _past_deadline(self, state: CanaryState) -> bool:
        if state.step_started_at is None:
            return False
        elapsed = self.clock() - state.step_started_at
        return elapsed >= self.params.canary.progress_deadline_seconds

    def _deadline_reason(self, state: CanaryState) -> str:
        weight = state.steps[state.step_index]
        last = next((r.analysis for r in reversed(state.history) if r.weight == weight), None)
        detail = f"; last analysis: {last.summary()}" if last else ""
        return (
            f"step {state.step_index + 1} ({weight}%) not passed within "
            f"{self.params.canary.progress_deadline_seconds:g}s{detail}"
        )

    def _check_live_stable(self, release: Release) -> None:
        """The release's stable must be what the router says is live; else nothing moves."""
        try:
            live: TrafficSplit | None = self.router.current()
        except RouterError:
            if not release.first_deploy:
                raise
            live = None
        if release.first_deploy or live is None:
            return
        if (live.stable_image, live.stable_model_version) != (
            release.stable_image,
            release.stable_version,
        ):
            raise ModelopsError(
                f"the router says stable is {live.stable_image} (model "
                f"{live.stable_model_version}), the release says {release.stable_image} (model "
                f"{release.stable_version}): rollback would go to the wrong place; build the "
                "release from the live state"
            )

    def _transition(
        self, state: CanaryState, phase: Phase, reason: str, *, decided: bool = False
    ) -> None:
        log.info("%s -> %s: %s", state.phase.value, phase.value, reason)
        if phase in (Phase.ROLLING_BACK, Phase.PROMOTING):
            state.reason = reason
        state.phase = phase
        if decided:
            state.decided_at = self.clock()
        self._event(state, reason)

    def _event(self, state: CanaryState, message: str) -> None:
        state.events.append({"at": self.clock(), "phase": state.phase.value, "message": message})
        self._save(state)

    def _save(self, state: CanaryState) -> None:
        save_state(self.state_file, state)
        write_prom(state, self.report_dir / "canary.prom", self.params.canary.shadow.mirror_percent)

    def _outcome(self, state: CanaryState) -> Outcome:
        end = state.decided_at if state.decided_at is not None else self.clock()
        return Outcome(
            phase=state.phase,
            release=state.release,
            reason=state.reason,
            state_file=self.state_file,
            reports=reports_of(self.report_dir),
            analyses=len(state.history),
            duration_s=max(0.0, end - state.started_at) if state.started_at else math.nan,
        )


def is_newer(candidate: str, running: str) -> bool:
    """A candidate supersedes the running canary if it is a later version (numbers compared
    as numbers; other labels: any different one)."""
    if candidate.isdigit() and running.isdigit():
        return int(candidate) > int(running)
    return candidate != running


def reports_of(report_dir: Path) -> dict[str, Path]:
    names = {"summary": "canary-summary.md", "metrics": "canary.prom", "timeline": "timeline.png"}
    return {k: report_dir / v for k, v in names.items() if (report_dir / v).exists()}


def run_canary(
    release: Release,
    router: Router,
    metrics: MetricProvider,
    promoter: Promoter,
    params: Params,
    env: str,
    run_dir: Path,
    **options: Any,
) -> Outcome:
    """The library entry point: run a canary with its state and reports in `run_dir`.

    `options` go to CanaryController (smoke=, sleep=, clock=, record=; by default every
    analysis's metrics are recorded in run_dir/metrics-record.jsonl for `replay`).
    """
    run_dir = Path(run_dir)
    options.setdefault("record", run_dir / RECORD_FILE)
    controller = CanaryController(
        router, metrics, promoter, params, env, run_dir / STATE_FILE, run_dir, **options
    )
    return controller.run(release)


def resume_canary(
    router: Router,
    metrics: MetricProvider,
    promoter: Promoter,
    params: Params,
    run_dir: Path,
    **options: Any,
) -> Outcome:
    """Resume the canary whose state is in `run_dir` (its environment comes from the state)."""
    run_dir = Path(run_dir)
    options.setdefault("record", run_dir / RECORD_FILE)
    env = load_state(run_dir / STATE_FILE).env
    controller = CanaryController(
        router, metrics, promoter, params, env, run_dir / STATE_FILE, run_dir, **options
    )
    return controller.resume()
