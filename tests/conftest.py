"""Shared fixtures: the real credit data, an isolated MLflow store, a trained model folder."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from modelops.config import Params, load_params
from modelops.pipeline.data import read_raw, split

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def params() -> Params:
    return load_params(REPO_ROOT / "params.yaml")


@pytest.fixture(scope="session")
def credit_frame(params: Params) -> pd.DataFrame:
    """The real credit_data table as committed in data/raw."""
    return read_raw(REPO_ROOT / params.data.path)


@pytest.fixture(scope="session")
def split_frames(credit_frame: pd.DataFrame, params: Params) -> tuple[pd.DataFrame, pd.DataFrame]:
    return split(credit_frame, params.data, params.split)


@pytest.fixture
def mlflow_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SQLite MLflow store + artifact folder for one test, via the environment."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ARTIFACT_ROOT", str(tmp_path / "mlartifacts"))
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return uri


@pytest.fixture(scope="session")
def trained_model(
    tmp_path_factory: pytest.TempPathFactory,
    params: Params,
    split_frames: tuple[pd.DataFrame, pd.DataFrame],
) -> Iterator[dict[str, Path | str]]:
    """One real training run (default params) in its own store: model folder, run file, URI."""
    from modelops.pipeline.train import train_and_log
    from modelops.registry.tracking import TrackingSettings

    root = tmp_path_factory.mktemp("trained")
    train_path = root / "train.parquet"
    split_frames[0].to_parquet(train_path, index=False)
    split_frames[1].to_parquet(root / "test.parquet", index=False)
    settings = TrackingSettings(
        tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
        artifact_root=str(root / "mlartifacts"),
    )
    result = train_and_log(
        params,
        train_path,
        REPO_ROOT / params.data.path,
        root / "model",
        root / "run.json",
        settings,
    )
    yield {
        "model_dir": root / "model",
        "run_file": root / "run.json",
        "tracking_uri": settings.tracking_uri,
        "run_id": result.run_id,
        "test_path": root / "test.parquet",
        "root": root,
    }


def copy_project(destination: Path) -> Path:
    """Copy the git-tracked project files into `destination` as a fresh git repository.

    Used by tests that run `dvc repro` or the CLI end to end without touching the checkout.
    """
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, files):
        source = REPO_ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    subprocess.run(["git", "init", "-q"], cwd=destination, check=True)
    subprocess.run(["git", "add", "-A"], cwd=destination, check=True, env=env)
    subprocess.run(["git", "commit", "-qm", "copy"], cwd=destination, check=True, env=env)
    return destination
