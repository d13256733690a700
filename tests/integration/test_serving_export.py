"""From the registry to the service: `modelops export-model` writes the folder the image
carries (with its provenance), and `python -m serving` starts from a models:/ URI or a bare
alias, reporting the registered name, version and commit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from modelops.config import Params
from modelops.pipeline.train import train_and_log
from modelops.registry.client import RegistryClient
from modelops.registry.tracking import TrackingSettings
from serving.process import ServiceProcess

pytestmark = pytest.mark.integration
MODELOPS = str(Path(sys.executable).parent / "modelops")


@pytest.fixture(scope="module")
def registry(
    tmp_path_factory: pytest.TempPathFactory,
    params: Params,
    split_frames: tuple[pd.DataFrame, pd.DataFrame],
    repo_root: Path,
) -> dict[str, Any]:
    """A fresh store with two versions of the model; @champion on version 1."""

    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    settings = TrackingSettings(tracking_uri=uri, artifact_root=str(root / "artifacts"))
    split_frames[0].to_parquet(root / "train.parquet", index=False)
    runs = []
    for i in range(2):
        runs.append(
            train_and_log(
                params,
                root / "train.parquet",
                repo_root / params.data.path,
                root / f"model{i}",
                root / f"run{i}.json",
                settings,
            )
        )
    registry = RegistryClient(uri)
    name = params.register_.model_name
    registry.register(
        name, runs[0].model_uri, runs[0].run_id, {"git_commit": "c0ffee1"}, ["champion"]
    )
    registry.register(name, runs[1].model_uri, runs[1].run_id, {"git_commit": "c0ffee2"}, [])
    return {"uri": uri, "root": root, "name": name, "runs": runs}


def cli(
    registry: dict[str, Any], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLFLOW_TRACKING_URI": registry["uri"]}
    return subprocess.run([MODELOPS, *args], capture_output=True, text=True, env=env, cwd=cwd)


def test_export_by_alias_writes_the_model_and_its_provenance(
    registry: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "build" / "model"
    done = cli(registry, "export-model", "--model-uri", f"models:/{registry['name']}@champion",
               "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"exported {registry['name']} version 1" in done.stdout
    assert f"--build-arg MODEL_DIR={out}" in done.stdout
    assert "--build-arg MODEL_VERSION=1" in done.stdout
    info = json.loads((out / "export.json").read_text())
    assert info["model_name"] == registry["name"]
    assert info["model_version"] == "1"
    assert info["run_id"] == registry["runs"][0].run_id
    assert info["git_commit"] == "c0ffee1"
    assert info["source_uri"] == f"models:/{registry['name']}@champion"
    for part in ("MLmodel", "model.skops", "extra_files/reference.json", "input_example.json"):
        assert (out / part).is_file(), part
    assert not list(tmp_path.glob("build/.export-*"))  # no staging folder left behind


def test_export_refuses_to_overwrite_and_explains(registry: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "model"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    uri = f"models:/{registry['name']}/2"
    refused = cli(registry, "export-model", "--model-uri", uri, "--out", str(out))
    assert refused.returncode == 1
    assert "exists and is not empty; pass --force" in refused.stderr
    assert (out / "keep.txt").read_text() == "mine"
    forced = cli(registry, "export-model", "--model-uri", uri, "--out", str(out), "--force")
    assert forced.returncode == 0, forced.stderr
    assert not (out / "keep.txt").exists()
    assert json.loads((out / "export.json").read_text())["git_commit"] == "c0ffee2"


def test_export_of_an_unknown_alias_says_what_to_do(
    registry: dict[str, Any], tmp_path: Path
) -> None:
    done = cli(registry, "export-model", "--model-uri", f"models:/{registry['name']}@nope",
               "--out", str(tmp_path / "m"))  # fmt: skip
    assert done.returncode == 1
    assert "not found in the registry" in done.stderr and "models:/<name>/<version>" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "m").exists()


def test_a_bare_alias_uses_the_model_name_in_params(
    registry: dict[str, Any], tmp_path: Path, repo_root: Path
) -> None:
    done = cli(registry, "export-model", "--model-uri", "2", "--out", str(tmp_path / "m"),
               "--params", str(repo_root / "params.yaml"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "m" / "export.json").read_text())["model_version"] == "2"


def test_the_service_starts_from_the_registry(
    registry: dict[str, Any], tmp_path: Path, repo_root: Path
) -> None:
    env = {"MLFLOW_TRACKING_URI": registry["uri"], "MODELOPS_PREDICTION_LOG": ""}
    for model, version, commit in ((f"models:/{registry['name']}@champion", "1", "c0ffee1"),
                                   ("2", "2", "c0ffee2")):  # fmt: skip
        args = [sys.executable, "-m", "serving", "--model", model,
                "--params", str(repo_root / "params.yaml")]  # fmt: skip
        service = ServiceProcess(args, env=env, log=tmp_path / f"{version}.log")
        service.args += ["--port", str(service.port)]
        with service:
            served = httpx.get(f"{service.url}/version").json()
        assert (served["model_name"], served["model_version"]) == (registry["name"], version)
        assert served["git_commit"] == commit
        assert served["run_id"] == registry["runs"][int(version) - 1].run_id
