"""A model's timeline from the registry: who put which version where, when, and why.

Every event comes from what the registry keeps on each version: its creation and the tags
`modelops register` wrote (run, commit, data hash, gate, model card), the canary receipts on
its run (registry/receipts.py), approvals (`approved.<env>.*`), promotions, rejections and
rollbacks the deploy tagged, and retirement. Events are sorted by time; at the same second,
in the order they happen (a canary, then its promotion).
"""

from __future__ import annotations

import time
from typing import Any

from modelops.registry.card import CARD_TAG
from modelops.registry.client import IMAGE, REJECTED, RegistryClient, VersionRef
from modelops.registry.receipts import read_receipts

# Order of events that share a timestamp.
_ORDER = ("registered", "approved", "canary", "promoted", "rejected", "rolled back", "retired")


def _utc_ms(epoch_ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_ms / 1000))


def _event(kind: str, ref: VersionRef, at: str | None, **fields: Any) -> dict[str, Any]:
    return {"at": at, "event": kind, "version": ref.version, "env": None, "by": None, **fields}


def _approvals(ref: VersionRef) -> list[dict[str, Any]]:
    envs = {key.split(".")[1] for key in ref.tags if key.startswith("approved.")}
    return [
        _event(
            "approved",
            ref,
            ref.tags.get(f"approved.{env}.at"),
            env=env,
            by=ref.tags.get(f"approved.{env}.by"),
        )
        for env in sorted(envs)
    ]


def _from_receipts(receipts: list[dict[str, Any]], ref: VersionRef) -> list[dict[str, Any]]:
    events = []
    for r in receipts:
        common = {"env": r.get("env"), "by": r.get("by"), "image": r.get("image")}
        events.append(
            _event(
                "canary",
                ref,
                r.get("decided_at"),
                **common,
                result=r.get("decision"),
                reason=r.get("reason"),
                duration_s=r.get("duration_s"),
                receipt=r["receipt"],
                gitops=r.get("gitops"),
            )
        )
        if r.get("decision") == "promoted":
            events.append(_event("promoted", ref, r.get("decided_at"), **common))
    return events


def version_events(registry: RegistryClient, ref: VersionRef) -> list[dict[str, Any]]:
    """Everything recorded on one version, as events."""
    tags = ref.tags
    events = [
        _event(
            "registered",
            ref,
            _utc_ms(ref.created_at) if ref.created_at else None,
            run_id=ref.run_id,
            git_commit=tags.get("git_commit", "unknown"),
            data_md5=tags.get("data_md5"),
            gate=tags.get("gate"),
            gate_auc=tags.get("gate_auc"),
            model_card=tags.get(CARD_TAG),
        ),
        *_approvals(ref),
    ]
    receipts = read_receipts(registry, ref)
    events += _from_receipts(receipts, ref)
    decided = {r.get("decision") for r in receipts}
    if "promoted_at" in tags and "promoted" not in decided:  # promoted outside a receipt
        events.append(_event("promoted", ref, tags["promoted_at"], image=tags.get(IMAGE)))
    if "rejected_at" in tags and not decided - {"promoted"}:
        events.append(_event("rejected", ref, tags["rejected_at"], reason=tags.get(REJECTED)))
    if "rolled_back_at" in tags:
        events.append(
            _event(
                "rolled back",
                ref,
                tags["rolled_back_at"],
                env=tags.get("rolled_back_env"),
                by=tags.get("rolled_back_by"),
                reason=tags.get("rolled_back"),
            )
        )
    if tags.get("retired") == "true":
        events.append(
            _event(
                "retired",
                ref,
                tags.get("retired_at"),
                by=tags.get("retired_by"),
                reason=tags.get("retired_reason"),
            )
        )
    return events


def _in_env(events: list[dict[str, Any]], env: str) -> list[dict[str, Any]]:
    """The events of `env`, with the registration and retirement of the versions it saw."""
    seen = {e["version"] for e in events if e["env"] == env}
    return [
        e
        for e in events
        if e["env"] == env or (e["event"] in ("registered", "retired") and e["version"] in seen)
    ]


def model_history(registry: RegistryClient, name: str, env: str | None = None) -> dict[str, Any]:
    """The model's timeline (oldest first) and its aliases now; `env` keeps that environment."""
    versions = registry.history(name)
    events = [e for ref in versions for e in version_events(registry, ref)]
    if env is not None:
        events = _in_env(events, env)
    events.sort(key=lambda e: (e["at"] or "", int(e["version"]), _ORDER.index(e["event"])))
    aliases = {alias: ref.version for ref in versions for alias in ref.aliases}
    return {"model": name, "env": env, "aliases": dict(sorted(aliases.items())), "events": events}
