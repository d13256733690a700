"""The GitHub Actions run a command runs in (from the GITHUB_* variables the runner sets)."""

from __future__ import annotations

import os
from collections.abc import Mapping


def run_url_from_env(environ: Mapping[str, str] = os.environ) -> str | None:
    """Link to the current GitHub Actions run, when running in one."""
    run_id = environ.get("GITHUB_RUN_ID")
    repository = environ.get("GITHUB_REPOSITORY")
    if not run_id or not repository:
        return None
    server = environ.get("GITHUB_SERVER_URL", "https://github.com")
    return f"{server}/{repository}/actions/runs/{run_id}"
