"""A model's timeline from the registry: registration, then what deploys recorded on it.

Every fact comes from the version's tags and aliases (written by `register`, the canary's
promoter and `deploy rollback`), so the registry alone answers "which version, where, when".
"""

from __future__ import annotations

import time
from typing import Any

from modelops.registry.client import IMAGE, REJECTED, RegistryClient, VersionRef

# (tag with the time, tag with the detail, event name), in the order they can happen.
_EVENTS = (
    ("promoted_at", None, "promoted"),
    ("rejected_at", REJECTED, "rejected"),
    ("rolled_back_at", "rolled_back", "rolled back"),
)


def _utc_ms(epoch_ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_ms / 1000))


def version_timeline(ref: VersionRef) -> dict[str, Any]:
    """One version's row: identity, lineage, gate, aliases and its deploy events by time."""
    tags = ref.tags
    events = [
        {"event": name, "at": tags[at], **({"detail": tags[detail]} if detail in tags else {})}
        for at, detail, name in _EVENTS
        if at in tags
    ]
    return {
        "version": ref.version,
        "registered_at": _utc_ms(ref.created_at) if ref.created_at else None,
        "run_id": ref.run_id,
        "git_commit": tags.get("git_commit", "unknown"),
        "data_md5": tags.get("data_md5"),
        "gate_auc": tags.get("gate_auc"),
        "aliases": sorted(ref.aliases),
        "image": tags.get(IMAGE),
        "events": sorted(events, key=lambda e: e["at"]),
    }


def timeline(registry: RegistryClient, name: str) -> list[dict[str, Any]]:
    """Every version of `name`, oldest first (an unknown model has no versions)."""
    return [version_timeline(ref) for ref in registry.history(name)]
