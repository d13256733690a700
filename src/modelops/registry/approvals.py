"""Approvals on record: who approved a version for an environment, and when.

`record_approval` writes tags `approved.<env>.by` (comma-separated) and `approved.<env>.at`
(UTC ISO 8601) on the version. `modelops record-approval` calls it; in the deploy workflow it
belongs in the production job, after GitHub's environment review let the job run, with the
reviewers and time that GitHub's API reports for the run's approvals
(GET /repos/{owner}/{repo}/actions/runs/{run_id}/approvals).
"""

from __future__ import annotations

from datetime import UTC, datetime

from modelops.errors import RegistryError
from modelops.registry.client import RegistryClient
from modelops.registry.receipts import check_env


def parse_time(at: str) -> str:
    """An ISO 8601 time with its offset, as UTC `YYYY-MM-DDTHH:MM:SSZ`; RegistryError if not."""
    try:
        moment = datetime.fromisoformat(at.strip().replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise RegistryError(
            f"--at {at!r}: give an ISO 8601 time with its offset, e.g. 2026-12-05T08:30:00Z "
            "(as GitHub's API reports it)"
        )
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def record_approval(
    registry: RegistryClient, name: str, version: str, env: str, approvers: list[str], at: str
) -> dict[str, str]:
    """Tag the version with its approvers for `env` and the approval time; the tags written."""
    people = [a.strip() for a in approvers if a.strip()]
    if not people or len(people) != len(approvers) or any("," in a for a in people):
        raise RegistryError(
            f"approvers {approvers!r}: give each approver's login once per --approver, "
            "without commas or blanks"
        )
    tags = {
        f"approved.{check_env(env)}.by": ", ".join(dict.fromkeys(people)),
        f"approved.{env}.at": parse_time(at),
    }
    registry.version(name, version)  # the version must exist; names it and the store if not
    registry.tag_version(name, version, tags)
    return tags
