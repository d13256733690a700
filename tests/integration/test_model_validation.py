"""`modelops validate-model`: AUC of the served model on fresh labeled rows vs gate.min_auc.

Runs against a real MLflow store (a copy of the session's training store, so registering the
champion here changes nobody else's registry) and through the real CLI entry point.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from modelops.cli import main
from modelops.config import Params

pytestmark = pytest.mark.integration


def run_cli(monkeypatch: pytest.MonkeyPatch, repo_root: Path, *args: str) -> int:
    monkeypatch.setattr(
        sys, "argv", ["modelops", *args, "--params", str(repo_root / "params.yaml")]
    )
    try:
        main()
    except SystemExit as done:
        return int(done.code or 0)
    return 0


@pytest.fixture
def champion_store(
    tmp_path: Path, trained_model: dict[str, Any], monkeypatch: pytest.MonkeyPatch, params: Params
) -> Iterator[str]:
    """A copy of the training store with the trained run registered as version 1 @champion."""
    import mlflow

    from modelops.pipeline.train import read_run
    from modelops.registry.client import RegistryClient

    shutil.copy(trained_model["root"] / "mlflow.db", tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    # MLflow's registry looks a version's logged model up in the process-wide tracking store,
    # which an earlier test's training run (in this worker) may have pointed elsewhere.
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    run = read_run(trained_model["run_file"])
    RegistryClient(uri).register(
        params.register_.model_name, run.model_uri, run.run_id, {"gate_auc": "0.8400"}, ["champion"]
    )
    yield uri
    mlflow.set_tracking_uri(previous)


def fresh_labels(frame: pd.DataFrame, params: Params, seed: int) -> pd.DataFrame:
    """Concept drift: among fixed-job applicants, outcomes no longer follow the features."""
    out = frame.copy()
    rng = np.random.default_rng(seed)
    rows = np.flatnonzero((out["Job"] == "fixed").to_numpy())
    out.loc[out.index[rows], params.data.target] = rng.permutation(
        out[params.data.target].to_numpy()[rows]
    )
    return out


def test_champion_from_the_registry_passes_on_fresh_labels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repo_root: Path, champion_store: str,
    trained_model: dict[str, Any], params: Params, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    import mlflow.sklearn

    from modelops.pipeline.data import labels
    from modelops.pipeline.evaluate import score

    labeled = tmp_path / "labeled.csv"
    test = pd.read_parquet(trained_model["test_path"])
    test.to_csv(labeled, index=False)
    model = f"models:/{params.register_.model_name}@champion"
    report = tmp_path / "model_validation.json"
    code = run_cli(
        monkeypatch, repo_root, "validate-model", "--model", model, "--data", str(labeled),
        "--report", str(report),
    )  # fmt: skip
    assert code == 0
    result = json.loads(report.read_text())
    local = mlflow.sklearn.load_model(str(trained_model["model_dir"]))
    expected = roc_auc_score(labels(test, params.data), score(local, test, params))
    assert result["roc_auc"] == pytest.approx(expected, abs=1e-6)
    assert result["passed"] and result["min_auc"] == params.gate.min_auc
    assert result["roc_auc_ci_low"] < result["roc_auc"] < result["roc_auc_ci_high"]
    assert result["registry"]["version"] == "1" and result["gate_auc"] == 0.84
    assert result["rows"] == len(test) and set(result["segments"]) >= {"fixed", "freelance"}
    assert "validate passed" in capsys.readouterr().out


def test_concept_drift_fails_under_the_floor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repo_root: Path,
    trained_model: dict[str, Any], params: Params, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    labeled = tmp_path / "labeled.parquet"
    drifted = fresh_labels(pd.read_parquet(trained_model["test_path"]), params, seed=3)
    drifted.loc[drifted.index[:40], params.data.target] = None  # outcomes not known yet
    drifted.to_parquet(labeled)
    report = tmp_path / "model_validation.json"
    code = run_cli(
        monkeypatch, repo_root, "validate-model", "--model", str(trained_model["model_dir"]),
        "--data", str(labeled), "--report", str(report),
    )  # fmt: skip
    result = json.loads(report.read_text())
    assert code == 3
    assert not result["passed"] and result["roc_auc"] < params.gate.min_auc
    assert result["rows"] == len(drifted) - 40
    assert result["notes"] == ["40 rows without a label yet were left out"]
    fixed = result["segments"]["fixed"]["roc_auc"]
    assert fixed < result["segments"]["freelance"]["roc_auc"]
    assert "validate FAILED" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no_target", "no label column 'Status'"),
        ("one_class", "AUC needs both outcomes"),
        ("unknown_alias", "not found in the registry"),
        ("not_a_model", "not an MLflow model folder"),
    ],
)
def test_bad_input_exits_1_with_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repo_root: Path, champion_store: str,
    trained_model: dict[str, Any], params: Params, capsys: pytest.CaptureFixture[str],
    case: str, message: str,
) -> None:  # fmt: skip
    test = pd.read_parquet(trained_model["test_path"])
    model = str(trained_model["model_dir"])
    if case == "no_target":
        test = test.drop(columns=[params.data.target])
    elif case == "one_class":
        test = test[test[params.data.target] != params.data.positive_class]
    elif case == "unknown_alias":
        model = f"models:/{params.register_.model_name}@nobody"
    else:
        model = str(tmp_path)
    data = tmp_path / "labeled.csv"
    test.to_csv(data, index=False)
    code = run_cli(
        monkeypatch, repo_root, "validate-model", "--model", model, "--data", str(data),
        "--report", str(tmp_path / "out.json"),
    )  # fmt: skip
    assert code == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()
