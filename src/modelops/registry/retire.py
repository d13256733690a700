"""Retirement: a version no environment serves is marked retired, with who, when and why.

MLflow's stages (and their Archived stage) are deprecated, so retirement is tags on the
version (`retired=true`, `retired_by`, `retired_at`, `retired_reason`) and no alias. A version
that a serving alias points at, that an environment's desired state runs (stable or canary),
or that the champion would roll back to, is refused: retire it after it stopped serving.
Only `challenger`, which serves nothing, is removed from the version.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from modelops.errors import Refused
from modelops.registry.client import CHALLENGER, PREVIOUS_CHAMPION, RegistryClient

RETIRED = "retired"
REMOVABLE_ALIASES = frozenset({CHALLENGER})


def retire_version(
    registry: RegistryClient,
    name: str,
    version: str,
    by: str,
    reason: str,
    served: Mapping[str, set[str]],
    clock: float | None = None,
) -> dict[str, str]:
    """Retire `version` unless something points at it; `served` maps environment -> the
    versions its desired state runs. Returns the tags written (already retired: its tags)."""
    if not by.strip() or not reason.strip():
        raise Refused("retire: say who retires the version (--by) and why (--reason)")
    ref = registry.version(name, version)
    if ref.tags.get(RETIRED) == "true":
        return {k: v for k, v in ref.tags.items() if k.startswith(RETIRED)}
    blockers = [f"alias '{a}'" for a in ref.aliases if a not in REMOVABLE_ALIASES]
    blockers += [f"environment {env}" for env, versions in served.items() if version in versions]
    for other in registry.history(name):
        if other.tags.get(PREVIOUS_CHAMPION) == version and other.aliases:
            blockers.append(
                f"the rollback chain (previous champion of version {other.version}, "
                f"alias {', '.join(other.aliases)})"
            )
    if blockers:
        raise Refused(
            f"models:/{name}/{version} is still in use: {'; '.join(blockers)}. Deploy another "
            "version there (or roll back) first; nothing was changed"
        )
    tags = {
        RETIRED: "true",
        "retired_by": by.strip(),
        "retired_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock or time.time())),
        "retired_reason": reason.strip()[:5000],
    }
    registry.tag_version(name, version, tags)
    for alias in ref.aliases:
        registry.delete_alias(name, alias)
    return tags
