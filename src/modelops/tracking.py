"""MLflow connection settings and provenance helpers (git commit, DVC-style data hash)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
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


def connect(settings: TrackingSettings) -> str:
    """Point MLflow at the store and return the experiment id, creating it if needed."""
    import mlflow

    mlflow.set_tracking_uri(settings.tracking_uri)
    experiment = mlflow.get_experiment_by_name(settings.experiment_name)
    if experiment is not None:
        return str(experiment.experiment_id)
    location = artifact_location(settings)
    return str(mlflow.create_experiment(settings.experiment_name, artifact_location=location))


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


def git_commit(cwd: str | Path = ".") -> str:
    """Current commit, suffixed with -dirty when tracked files changed; 'unknown' outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def log_to_run(
    settings: TrackingSettings, run_id: str, metrics: dict[str, float], artifacts: list[Path]
) -> bool:
    """Add metrics and files to an existing run; False (with a warning) if the store lacks it."""
    import mlflow

    mlflow.set_tracking_uri(settings.tracking_uri)
    client = mlflow.MlflowClient()
    if not run_exists(run_id):
        print(
            f"warning: run {run_id} is not in {settings.tracking_uri}; metrics kept in files only",
            file=sys.stderr,
        )
        return False
    for key, value in metrics.items():
        client.log_metric(run_id, key, value)
    for path in artifacts:
        client.log_artifact(run_id, str(path), artifact_path="evaluation")
    return True


def run_exists(run_id: str) -> bool:
    """Whether the current tracking store holds this run."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        mlflow.MlflowClient().get_run(run_id)
    except MlflowException:
        return False
    return True
