"""Training runs and the register/alias flow, on SQLite and on `mlflow server` + PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from modelops.config import Params
from modelops.pipeline.gate import decide, write_report
from modelops.pipeline.train import read_run, train_and_log
from modelops.registry.tracking import TrackingSettings, file_md5

MODELOPS = str(Path(sys.executable).parent / "modelops")


def train_into(
    tracking_uri: str, root: Path, params: Params, split_frames, repo_root: Path
) -> Path:
    """One training run into the given store; returns the folder with run.json."""
    root.mkdir(parents=True, exist_ok=True)
    split_frames[0].to_parquet(root / "train.parquet", index=False)
    settings = TrackingSettings(tracking_uri=tracking_uri, artifact_root=str(root / "artifacts"))
    train_and_log(
        params,
        root / "train.parquet",
        repo_root / params.data.path,
        root / "model",
        root / "run.json",
        settings,
    )
    return root


def gate_report(root: Path, passed_auc: float, params: Params) -> Path:
    """A gate report for the run in root/run.json (scores chosen to pass or fail the floor)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    noise = 0.3 if passed_auc >= params.gate.min_auc else 40.0
    report = decide(
        y,
        y + rng.normal(0, noise, 500),
        None,
        None,
        read_run(root / "run.json").run_id,
        params.gate,
    )
    write_report(report, root / "gate.json", root / "gate.md")
    return root / "gate.json"


def register(root: Path, tracking_uri: str, repo_root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri}
    return subprocess.run(
        [
            MODELOPS,
            "register",
            "--run-file",
            str(root / "run.json"),
            "--gate-report",
            str(root / "gate.json"),
            "--params",
            str(repo_root / "params.yaml"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
    )


def assert_register_flow(
    tracking_uri: str, root: Path, params: Params, split_frames, repo_root: Path
) -> None:
    """The contract of `modelops register`, identical for every store."""
    name = params.register_.model_name
    train_into(tracking_uri, root, params, split_frames, repo_root)
    run = read_run(root / "run.json")

    gate_report(root, 0.0, params)  # failing gate
    refused = register(root, tracking_uri, repo_root)
    assert refused.returncode == 1 and "gate did not pass" in refused.stderr
    client = MlflowClient(tracking_uri=tracking_uri)
    assert client.search_model_versions(f"name = '{name}'") == []

    gate_report(root, 1.0, params)
    first = register(root, tracking_uri, repo_root)
    assert first.returncode == 0, first.stderr
    assert "version 1 registered" in first.stdout
    version = client.get_model_version_by_alias(name, "challenger")
    assert str(version.version) == "1" and version.run_id == run.run_id
    assert version.tags["git_commit"] == run.git_commit
    assert version.tags["data_md5"] == file_md5(repo_root / params.data.path)
    assert version.tags["gate"] == "passed"

    again = register(root, tracking_uri, repo_root)
    assert again.returncode == 0 and "nothing new" in again.stdout
    assert len(client.search_model_versions(f"name = '{name}'")) == 1

    other = root / "other-run"
    other.mkdir()
    json.dump(
        {**json.loads((root / "run.json").read_text()), "run_id": "0" * 32},
        (other / "run.json").open("w"),
    )
    (other / "gate.json").write_text((root / "gate.json").read_text())
    mismatch = register(other, tracking_uri, repo_root)
    assert mismatch.returncode == 1 and "rerun `dvc repro`" in mismatch.stderr


def test_training_run_records_everything(trained_model, params: Params, repo_root: Path) -> None:
    client = MlflowClient(tracking_uri=str(trained_model["tracking_uri"]))
    run = client.get_run(str(trained_model["run_id"]))
    assert run.data.params["model"] == "hist_gradient_boosting"
    assert run.data.params["hist_gradient_boosting.max_iter"] == str(
        params.train.hist_gradient_boosting.max_iter
    )
    assert run.data.metrics["train_roc_auc"] > 0.85
    assert run.data.tags["data_md5"] == file_md5(repo_root / params.data.path)
    assert run.data.tags["git_commit"] not in ("", None)

    model_dir = Path(trained_model["model_dir"])
    import mlflow.models
    import mlflow.sklearn

    # Read from the folder's MLmodel: get_model_info would also look the model up in whatever
    # tracking store the process points at, which another test may have changed.
    signature = mlflow.models.Model.load(str(model_dir)).signature
    assert signature is not None
    inputs = [c["name"] for c in signature.inputs.to_dict()]
    assert inputs == params.data.features
    assert (model_dir / "input_example.json").is_file()
    reference = json.loads((model_dir / "extra_files" / "reference.json").read_text())
    assert set(reference["features"]) == set(params.data.features) and "score" in reference
    model = mlflow.sklearn.load_model(str(model_dir))
    test = pd.read_parquet(trained_model["test_path"])
    from modelops.pipeline.evaluate import score

    assert score(model, test, params).shape == (len(test),)


@pytest.mark.parametrize("model_name", ["hist_gradient_boosting", "logistic_regression"])
def test_both_model_families_reach_the_gate(model_name: str, params: Params, split_frames) -> None:
    from sklearn.metrics import roc_auc_score

    from modelops.pipeline.data import labels
    from modelops.pipeline.evaluate import score
    from modelops.pipeline.train import fit

    chosen = params.model_copy(
        update={"train": params.train.model_copy(update={"model": model_name})}
    )
    model, *_ = fit(chosen, split_frames[0])
    auc = roc_auc_score(labels(split_frames[1], params.data), score(model, split_frames[1], params))
    assert auc > params.gate.min_auc, (model_name, auc)


def test_register_flow_on_sqlite(tmp_path: Path, params: Params, split_frames, repo_root) -> None:
    assert_register_flow(
        f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "work", params, split_frames, repo_root
    )


@pytest.mark.integration
def test_register_flow_on_mlflow_server_with_postgres(
    mlflow_server: str, tmp_path: Path, params: Params, split_frames, repo_root
) -> None:
    assert_register_flow(mlflow_server, tmp_path / "work", params, split_frames, repo_root)
    versions = MlflowClient(tracking_uri=mlflow_server).search_model_versions(
        f"name = '{params.register_.model_name}'"
    )
    assert versions[0].source.startswith(("models:/", "mlflow-artifacts:"))
