"""MLflow connection settings and provenance helpers (git commit, DVC-style data hash)."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class TrackingSettings(BaseSettings):
    """Where runs and models go. Defaults need no server: SQLite file + local artifact folder.

    Override with MLFLOW_TRACKING_URI (e.g. http://mlflow:5000 or postgresql://...),
    MLFLOW_EXPERIMENT_NAME and MLFLOW_ARTIFACT_ROOT. An empty variable (as a CI workflow sets
    for an unset repository variable) counts as unset.
    """

    model_config = SettingsConfigDict(env_prefix="MLFLOW_", extra="ignore", env_ignore_empty=True)

    tracking_uri: str = "sqlite:///mlflow.db"
    experiment_name: str = "credit-scoring"
    artifact_root: str = "mlartifacts"
    # The retry budget against a tracking server. The names are MLflow's own variables
    # (MLFLOW_HTTP_REQUEST_MAX_RETRIES, MLFLOW_HTTP_REQUEST_TIMEOUT); MLflow's defaults (7
    # retries with exponential backoff, 120 s timeout) keep a command silent for minutes.
    http_request_max_retries: int = 2
    http_request_timeout: int = 10
    connect_timeout: float = 5.0  # MLFLOW_CONNECT_TIMEOUT: the reachability check

    def apply_http_budget(self) -> None:
        """Hand the retry budget to MLflow, which reads it from the environment only."""
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(self.http_request_max_retries)
        os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(self.http_request_timeout)


def use_for_run_logging(settings: TrackingSettings) -> None:
    """Point MLflow's fluent API at the store: the one place the process-wide tracking URI is
    set. Training needs it because `mlflow.start_run` and `mlflow.sklearn.log_model` only log
    to the global store; every other command uses an explicit `RegistryClient`."""
    import mlflow

    mlflow.set_tracking_uri(settings.tracking_uri)


def artifact_location(settings: TrackingSettings) -> str | None:
    """Where a new experiment keeps artifacts; None lets a tracking server choose (it proxies
    or knows its bucket). A local folder is made absolute so runs from any directory agree."""
    if settings.tracking_uri.startswith(("http://", "https://")):
        return settings.artifact_root if "://" in settings.artifact_root else None
    if "://" in settings.artifact_root:
        return settings.artifact_root
    return Path(settings.artifact_root).resolve().as_uri()


def file_md5(path: str | Path) -> str:
    """MD5 of a file's bytes: the same value DVC records for it in dvc.lock."""
    digest = hashlib.md5(usedforsecurity=False)
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# What `dvc repro` itself rewrites while it runs: not a change of the sources trained from.
PIPELINE_WRITES = ("dvc.lock", "reports")


def git_commit(cwd: str | Path = ".") -> str:
    """Current commit, suffixed with -dirty when tracked files changed (other than the lock
    file and the reports the pipeline writes as it runs); 'unknown' outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                *(f":(exclude){path}" for path in PIPELINE_WRITES),
            ],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit
