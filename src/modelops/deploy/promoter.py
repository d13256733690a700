"""The registry side of a deploy: record images, promote, reject, and roll back by hand.

`RegistryPromoter` is the controller's `Promoter` on a `RegistryClient` (the MLflow registry):

- `record_image(name, version, image)`: model-version tag `image`, so a later rollback knows
  which image serves that version (the controller sets it when a release starts; for a
  version deployed otherwise, `modelops deploy tag-image`).
- `promote(name, version)`: alias `champion` moves to `version`, whose tag `previous_champion`
  keeps the version it replaced. Each champion points at its predecessor, so rollbacks can
  be repeated one version at a time.
- `reject(name, version, reason)`: tags `rejected` (the reason) and `rejected_at`; `champion`
  does not move.

`rollback_champion` is `modelops deploy rollback`: stable back to the previous champion's image at
100 % through a Router, then `champion` back to that version.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from modelops.deploy.gitops import TrafficSplit
from modelops.deploy.router import Router
from modelops.errors import RegistryError
from modelops.registry.client import (
    CHAMPION,
    IMAGE,
    PREVIOUS_CHAMPION,
    REJECTED,
    RegistryClient,
)

log = logging.getLogger(__name__)

MAX_TAG_CHARS = 5000  # MLflow's limit on a tag value


@runtime_checkable
class Promoter(Protocol):
    """Where the outcome of a canary is recorded (the model registry)."""

    def record_image(self, name: str, version: str, image: str) -> None: ...

    def promote(self, name: str, version: str) -> None: ...

    def reject(self, name: str, version: str, reason: str) -> None: ...


def _utc(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


class RegistryPromoter:
    """Promoter on the MLflow model registry the environment points at."""

    def __init__(self, registry: RegistryClient, clock: Callable[[], float] = time.time) -> None:
        self.registry = registry
        self.clock = clock

    def _now(self) -> str:
        return _utc(self.clock())

    def record_image(self, name: str, version: str, image: str) -> None:
        tags = self.registry.version_tags(name, version)
        old = tags.get(IMAGE)
        if old and old != image:
            log.warning("models:/%s/%s: image tag %s replaced by %s", name, version, old, image)
        self.registry.tag_version(name, version, {IMAGE: image})

    def promote(self, name: str, version: str) -> None:
        previous = self.registry.move_champion(name, version)
        self.registry.tag_version(name, version, {"promoted_at": self._now()})
        log.info("models:/%s@champion -> %s (previous champion: %s)", name, version, previous)

    def reject(self, name: str, version: str, reason: str) -> None:
        self.registry.version_tags(name, version)  # must exist
        self.registry.tag_version(
            name,
            version,
            {REJECTED: reason[:MAX_TAG_CHARS] or "rejected", "rejected_at": self._now()},
        )
        log.info("models:/%s/%s tagged rejected: %s", name, version, reason)


@dataclass(frozen=True)
class RollbackResult:
    model_name: str
    from_version: str
    to_version: str
    image: str
    split: TrafficSplit


def rollback_target(registry: RegistryClient, name: str) -> tuple[str, str, str]:
    """(current champion, previous champion, previous champion's image), or RegistryError."""
    current = registry.version_by_alias(name, CHAMPION)
    if current is None:
        raise RegistryError(
            f"models:/{name}@{CHAMPION} does not exist: there is nothing to roll back "
            "(check --model-name and MLFLOW_TRACKING_URI)"
        )
    previous = registry.version_tags(name, current.version).get(PREVIOUS_CHAMPION)
    if not previous:
        raise RegistryError(
            f"champion models:/{name}/{current.version} has no previous champion recorded (tag "
            f"'{PREVIOUS_CHAMPION}'): it was the first version deployed, or promoted "
            "outside the canary. Deploy the version you want with the canary instead"
        )
    image = registry.version_tags(name, previous).get(IMAGE)
    if not image:
        raise RegistryError(
            f"models:/{name}/{previous} (the previous champion) has no '{IMAGE}' tag, so "
            "its image is unknown: set it with `modelops deploy tag-image --version "
            f"{previous} --image <registry/repo@sha256:...>` and run the rollback again"
        )
    return current.version, previous, image


def rollback_champion(
    registry: RegistryClient,
    name: str,
    router: Router,
    reason: str,
    clock: Callable[[], float] = time.time,
) -> RollbackResult:
    """Stable = the previous champion's image at 100 %, then `champion` moves back to it.

    Traffic moves first: if the router fails nothing in the registry changed, and running
    the command again repeats both steps (each is idempotent).
    """
    current, previous, image = rollback_target(registry, name)
    split = TrafficSplit(image, previous)
    router.apply(split)
    registry.set_alias(name, CHAMPION, previous)
    note = reason[:MAX_TAG_CHARS] or "manual rollback"
    registry.tag_version(name, current, {"rolled_back": note, "rolled_back_at": _utc(clock())})
    log.info("models:/%s@champion rolled back %s -> %s (%s)", name, current, previous, image)
    return RollbackResult(name, current, previous, image, split)
