"""Where experiments keep artifacts, and how the MLFLOW_* environment is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelops.registry.tracking import TrackingSettings, artifact_location


@pytest.mark.parametrize(
    ("tracking_uri", "artifact_root", "expected"),
    [
        # A tracking server picks (or proxies) the artifact store: a local folder of this
        # machine would be a path the server and other clients cannot see.
        ("https://mlflow.example.com", "mlartifacts", None),
        ("http://127.0.0.1:5000", "mlartifacts", None),
        # ... unless the user named a shared store explicitly.
        ("https://mlflow.example.com", "s3://bucket/mlflow", "s3://bucket/mlflow"),
        ("postgresql://u@db/mlflow", "gs://bucket/mlflow", "gs://bucket/mlflow"),
    ],
)
def test_artifact_location_for_servers_and_buckets(
    tracking_uri: str, artifact_root: str, expected: str | None
) -> None:
    settings = TrackingSettings(tracking_uri=tracking_uri, artifact_root=artifact_root)
    assert artifact_location(settings) == expected


def test_local_folder_is_an_absolute_file_uri(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = TrackingSettings(tracking_uri="sqlite:///mlflow.db", artifact_root="mlartifacts")
    assert artifact_location(settings) == (tmp_path / "mlartifacts").as_uri()


def test_empty_environment_variables_count_as_unset(monkeypatch) -> None:
    """CI sets MLFLOW_TRACKING_URI to '' when the repository variable is not defined."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")
    monkeypatch.setenv("MLFLOW_ARTIFACT_ROOT", "")
    settings = TrackingSettings()
    assert settings.tracking_uri == "sqlite:///mlflow.db"
    assert settings.artifact_root == "mlartifacts"
