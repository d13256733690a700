"""The canary controller's saved state: release, phase, step, failures, every analysis.

The controller writes it (atomically: temporary file + rename) after every transition, so a
controller that is killed can be started again with `resume()` and finish what it was doing.
The file is JSON, readable by people too (`jq . canary-state.json`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from modelops.deploy.analysis import Analysis
from modelops.deploy.gitops import TrafficSplit, write_bytes_atomic
from modelops.errors import ModelopsError

STATE_VERSION = 1


class Phase(StrEnum):
    INITIALIZING = "initializing"
    SHADOWING = "shadowing"
    PROGRESSING = "progressing"
    PROMOTING = "promoting"
    SUCCEEDED = "succeeded"
    ROLLING_BACK = "rolling_back"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (Phase.SUCCEEDED, Phase.FAILED)


class StateError(ModelopsError, RuntimeError):
    """The state file is missing, unreadable, or says another canary is running."""


@dataclass(frozen=True)
class Release:
    """What a canary moves: from the stable version (None on a first deploy) to the canary."""

    model_name: str
    canary_version: str
    canary_image: str
    stable_version: str | None = None
    stable_image: str | None = None

    def __post_init__(self) -> None:
        if (self.stable_version is None) != (self.stable_image is None):
            raise ModelopsError(
                "release: give stable_version and stable_image together (both None means a "
                "first deploy, with no stable version yet)"
            )
        if self.stable_version is not None and self.stable_version == self.canary_version:
            raise ModelopsError(
                f"release: version {self.canary_version} is already stable; nothing to deploy"
            )
        # Validates both images and versions now, before anything moves (RouterError if bad).
        self.promoted_split()
        if not self.first_deploy:
            self.canary_split(1)

    @property
    def first_deploy(self) -> bool:
        return self.stable_version is None

    @property
    def canary_uri(self) -> str:
        return f"models:/{self.model_name}/{self.canary_version}"

    def stable_split(self) -> TrafficSplit:
        """All traffic on stable, canary removed: where a rollback goes."""
        if self.stable_image is None or self.stable_version is None:
            raise ModelopsError("a first deploy has no stable version to go back to")
        return TrafficSplit(self.stable_image, self.stable_version)

    def canary_split(self, weight: int) -> TrafficSplit:
        if self.stable_image is None or self.stable_version is None:
            raise ModelopsError("a first deploy has no stable version to split traffic with")
        return TrafficSplit(
            self.stable_image, self.stable_version, self.canary_image, self.canary_version, weight
        )

    def shadow_split(self, mirror_percent: int) -> TrafficSplit:
        """All user traffic on stable, `mirror_percent` of it copied to the canary."""
        if self.stable_image is None or self.stable_version is None:
            raise ModelopsError("a first deploy has no stable version to mirror traffic from")
        return TrafficSplit(
            self.stable_image,
            self.stable_version,
            self.canary_image,
            self.canary_version,
            0,
            mirror_percent,
        )

    def promoted_split(self) -> TrafficSplit:
        """The canary is the new stable, at 100 %."""
        return TrafficSplit(self.canary_image, self.canary_version)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StepRecord:
    """One analysis: when, at which step and weight, and its checks."""

    at: float
    step: int
    weight: int
    analysis: Analysis
    phase: str = "canary"  # or "shadow": mirrored traffic, weight 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "step": self.step,
            "weight": self.weight,
            "phase": self.phase,
            "analysis": self.analysis.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StepRecord:
        return cls(
            at=float(data["at"]),
            step=int(data["step"]),
            weight=int(data["weight"]),
            analysis=Analysis.from_dict(data["analysis"]),
            phase=str(data.get("phase", "canary")),
        )


@dataclass
class CanaryState:
    """Everything needed to resume, and to explain the decision afterwards."""

    release: Release
    env: str
    steps: list[int]
    phase: Phase = Phase.INITIALIZING
    step_index: int = 0
    step_started_at: float | None = None
    failures: dict[str, int] = field(default_factory=dict)
    history: list[StepRecord] = field(default_factory=list)
    weights: list[tuple[float, int]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""
    started_at: float = 0.0
    decided_at: float | None = None
    owner: str = ""  # the controller run that drives this canary (see `Lock`)
    superseded_by: str | None = None  # the newer version that aborted this canary
    shadow_started_at: float | None = None

    @property
    def weight(self) -> int:
        """Percent of traffic last sent to the new version (100 once promoted, 0 rolled back)."""
        return self.weights[-1][1] if self.weights else 0

    @property
    def promoted(self) -> bool:
        return self.phase == Phase.SUCCEEDED

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "release": self.release.to_dict(),
            "env": self.env,
            "steps": self.steps,
            "phase": self.phase.value,
            "step_index": self.step_index,
            "step_started_at": self.step_started_at,
            "failures": self.failures,
            "history": [r.to_dict() for r in self.history],
            "weights": [list(w) for w in self.weights],
            "events": self.events,
            "reason": self.reason,
            "started_at": self.started_at,
            "decided_at": self.decided_at,
            "owner": self.owner,
            "superseded_by": self.superseded_by,
            "shadow_started_at": self.shadow_started_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CanaryState:
        return cls(
            release=Release(**data["release"]),
            env=str(data["env"]),
            steps=[int(s) for s in data["steps"]],
            phase=Phase(data["phase"]),
            step_index=int(data["step_index"]),
            step_started_at=data.get("step_started_at"),
            failures={str(k): int(v) for k, v in data.get("failures", {}).items()},
            history=[StepRecord.from_dict(r) for r in data.get("history", [])],
            weights=[(float(at), int(w)) for at, w in data.get("weights", [])],
            events=list(data.get("events", [])),
            reason=str(data.get("reason", "")),
            started_at=float(data.get("started_at", 0.0)),
            decided_at=data.get("decided_at"),
            owner=str(data.get("owner", "")),
            superseded_by=data.get("superseded_by"),
            shadow_started_at=data.get("shadow_started_at"),
        )


@dataclass(frozen=True)
class Lock:
    """Who owns a run folder's canary: the controller run and the version it rolls out.

    A controller writes it when it starts (or resumes) and reads it before every analysis; a
    newer candidate takes it over, and the controller that lost it aborts its canary (stable
    at 100 %, reason "superseded by vN") at its next check.
    """

    owner: str
    canary_version: str
    pid: int
    at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def write_lock(path: Path, lock: Lock) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, (json.dumps(lock.to_dict(), indent=2) + "\n").encode("utf-8"))


def read_lock(path: Path) -> Lock | None:
    """The lock in `path`, or None when there is none (or it is unreadable: nobody owns it)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return Lock(
            str(data["owner"]), str(data["canary_version"]), int(data["pid"]), float(data["at"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_state(path: Path, state: CanaryState) -> None:
    """Atomically replace the state file (readers see the old or the new state, whole)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(state.to_dict(), indent=2, allow_nan=False) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))


def load_state(path: Path) -> CanaryState:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StateError(
            f"no canary state at {path}: nothing to resume (start a canary with run())"
        ) from None
    except json.JSONDecodeError as error:
        raise StateError(
            f"{path} is not valid JSON ({error.msg} at line {error.lineno}): the controller "
            "writes it atomically, so it was edited by hand; restore it or check the traffic "
            "split yourself before deleting it"
        ) from None
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        raise StateError(f"{path}: not a canary state file of version {STATE_VERSION}")
    try:
        return CanaryState.from_dict(data)
    except (KeyError, TypeError, ValueError) as error:
        raise StateError(f"{path}: malformed canary state ({error!r})") from None
