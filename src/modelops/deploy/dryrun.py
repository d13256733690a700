"""Dry run: the canary's analysis on live metrics, with every action printed instead of done.

`modelops deploy canary --dry-run` runs the controller unchanged, on the real metric provider,
with a `DryRunRouter` (reads what is live from the real router, never applies anything) and a
`DryRunPromoter` (never touches the registry). Each action it would take is logged as
`DRY RUN: would ...`; state, reports and the metrics recording go to `<run dir>/dry-run/`, so a
real canary's state is never touched. Useful to see how a release running now would be judged
under the params given, or how a threshold change would act on live traffic.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from modelops.deploy.gitops import TrafficSplit
from modelops.deploy.router import Router

log = logging.getLogger(__name__)


@dataclass
class DryRunRouter:
    """Reads the live split from `live`; `apply` only records and logs what it would do."""

    live: Router
    would_apply: list[TrafficSplit] = field(default_factory=list)

    def current(self) -> TrafficSplit:
        return self.live.current()

    def apply(self, split: TrafficSplit) -> None:
        self.would_apply.append(split)
        canary = (
            f", canary {split.canary_model_version} at {split.canary_weight}%"
            if split.canary_image
            else ", no canary"
        )
        log.warning("DRY RUN: would apply stable %s%s", split.stable_model_version, canary)


@dataclass
class DryRunPromoter:
    """Logs the registry changes a canary would make; makes none."""

    would: list[str] = field(default_factory=list)

    def _say(self, action: str) -> None:
        self.would.append(action)
        log.warning("DRY RUN: would %s", action)

    def record_image(self, name: str, version: str, image: str) -> None:
        self._say(f"tag {name} {version} image={image}")

    def promote(self, name: str, version: str) -> None:
        self._say(f"move {name} champion to {version}")

    def reject(self, name: str, version: str, reason: str) -> None:
        self._say(f"tag {name} {version} rejected: {reason}")
