"""Decision receipts: what each canary decided, on what evidence, kept with the model version.

`record_canary_decision` appends one JSON file, `receipts/<decided at>-<env>.json`, to the
artifacts of the version's training run, and sets summary tags on the version
(`canary.<env>.decision`, `.at`, `.image`, `.receipt`). A receipt links the version, the
image digest it was served from, every analysis (each check's PromQL queries, measured values
and threshold), the decision and its reason, and the GitOps change (the desired-state file and
the git blob of its content, which `git log --find-object=<blob>` turns into the commit, plus
the commit itself when the caller knows it). Recording the same decision again is a no-op,
so a resumed canary does not write a second receipt.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from modelops.errors import RegistryError
from modelops.registry.client import RegistryClient, VersionRef

RECEIPTS = "receipts"
SCHEMA = 1
ENV_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")


def utc(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def check_env(env: str) -> str:
    """An environment name usable in tags and file names, or RegistryError saying so."""
    if not ENV_PATTERN.fullmatch(env):
        raise RegistryError(
            f"environment {env!r}: use letters, digits, '-' and '_' (e.g. staging, production)"
        )
    return env


@dataclass(frozen=True)
class CheckEvidence:
    """One check of one analysis: the queries behind it, what they measured, the limit."""

    name: str
    queries: dict[str, list[str]]  # per track (canary, stable): the PromQL that was run
    canary: float | str | None
    stable: float | str | None
    threshold: float | str | None
    verdict: str
    message: str


@dataclass(frozen=True)
class AnalysisEvidence:
    at: float
    step: int  # 1-based
    weight: int
    window_s: int
    stable_offset_s: int
    verdict: str
    checks: list[CheckEvidence]


@dataclass(frozen=True)
class CanaryDecision:
    """Everything a receipt holds; the deploy CLI builds it from the canary's saved state."""

    model_name: str
    version: str
    env: str
    decision: str  # promoted | rolled back (or an unfinished phase)
    reason: str
    image: str
    stable_version: str | None
    stable_image: str | None
    started_at: float
    decided_at: float
    analyses: list[AnalysisEvidence] = field(default_factory=list)
    gitops_file: str | None = None
    gitops_blob: str | None = None  # git hash-object of the desired state after the decision
    gitops_commit: str | None = None
    by: str = "unknown"
    run_url: str | None = None


def receipt_body(decision: CanaryDecision) -> dict[str, Any]:
    """The receipt as JSON data (times as UTC ISO 8601, durations in seconds)."""
    analyses = [
        {**asdict(a), "at": utc(a.at), "checks": [asdict(c) for c in a.checks]}
        for a in decision.analyses
    ]
    return {
        "schema": SCHEMA,
        "model": decision.model_name,
        "version": decision.version,
        "env": decision.env,
        "decision": decision.decision,
        "reason": decision.reason,
        "image": decision.image,
        "stable": (
            {"version": decision.stable_version, "image": decision.stable_image}
            if decision.stable_version
            else None
        ),
        "started_at": utc(decision.started_at),
        "decided_at": utc(decision.decided_at),
        "duration_s": round(decision.decided_at - decision.started_at, 1),
        "by": decision.by,
        "run_url": decision.run_url,
        "gitops": {
            "file": decision.gitops_file,
            "blob": decision.gitops_blob,
            "commit": decision.gitops_commit,
        },
        "analyses": analyses,
    }


def receipt_path(decision: CanaryDecision) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(decision.decided_at))
    return f"{RECEIPTS}/{stamp}-{decision.env}.json"


def record_canary_decision(registry: RegistryClient, decision: CanaryDecision) -> str:
    """Append the receipt to the version's run and tag the version; the receipt's artifact path.

    Idempotent: a receipt for the same decision time and environment is not written twice.
    """
    env = check_env(decision.env)
    ref = registry.version(decision.model_name, decision.version)
    if not ref.run_id:
        raise RegistryError(
            f"{ref.uri} has no training run to keep receipts on; register versions with "
            "`modelops register`, which links each to its run"
        )
    path = receipt_path(decision)
    if path not in registry.artifact_names(ref.run_id, RECEIPTS):
        text = json.dumps(receipt_body(decision), indent=2, allow_nan=False) + "\n"
        registry.log_text(ref.run_id, text, path)
    prefix = f"canary.{env}"
    registry.tag_version(
        ref.name,
        ref.version,
        {
            f"{prefix}.decision": decision.decision,
            f"{prefix}.at": utc(decision.decided_at),
            f"{prefix}.image": decision.image,
            f"{prefix}.receipt": f"runs:/{ref.run_id}/{path}",
        },
    )
    return path


def read_receipts(registry: RegistryClient, ref: VersionRef) -> list[dict[str, Any]]:
    """The receipts of one version, oldest first (file names start with the decision time).

    They are kept on its training run; a run behind several versions keeps each one's."""
    if not ref.run_id:
        return []
    receipts = []
    for path in registry.artifact_names(ref.run_id, RECEIPTS):
        if path.endswith(".json"):
            body = json.loads(registry.read_text(ref.run_id, path))
            if body.get("model") == ref.name and str(body.get("version")) == ref.version:
                receipts.append({**body, "receipt": path})
    return receipts
