"""The DVC pipeline end to end in a fresh copy of the project, with the real CLI and MLflow."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from tests.conftest import copy_project

BIN = Path(sys.executable).parent
STAGES = {"validate_data", "assemble", "split", "train", "evaluate", "gate"}


def sh(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command as a user would in the project folder (default embedded MLflow store)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    env["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env)
    if check and done.returncode != 0:
        raise AssertionError(f"{args} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def ran_stages(output: str) -> set[str]:
    return set(re.findall(r"Running stage '(\w+)'", output))


def edit_params(root: Path, change) -> None:  # type: ignore[no-untyped-def]
    path = root / "params.yaml"
    params = yaml.safe_load(path.read_text())
    change(params)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def tree_md5(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh clone-like copy after one cold `dvc repro` and `modelops register`."""
    root = copy_project(tmp_path_factory.mktemp("project"))
    cold = sh(["dvc", "repro"], root)
    # validate's report is git-tracked and the data is unchanged, so a fresh clone skips it.
    assert ran_stages(cold.stdout) == STAGES - {"validate_data"}, cold.stdout
    return root


def client(root: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")


def test_cold_run_produces_reports_and_a_passing_gate(project: Path) -> None:
    metrics = json.loads((project / "reports/metrics.json").read_text())
    assert 0.8 < metrics["roc_auc"] < 0.95
    assert metrics["roc_auc_ci_low"] < metrics["roc_auc"] < metrics["roc_auc_ci_high"]
    assert {"pr_auc", "log_loss", "brier"} <= metrics.keys()
    assert {"fixed", "freelance", "others", "partime"} <= set(metrics["segments"])
    for name in ("roc", "precision_recall", "calibration"):
        png = project / f"reports/plots/{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    gate = json.loads((project / "reports/gate.json").read_text())
    assert gate["passed"] and gate["champion"] is None
    run_id = json.loads((project / "models/run.json").read_text())["run_id"]
    run = client(project).get_run(run_id)
    assert run.data.metrics["test_roc_auc"] == pytest.approx(metrics["roc_auc"])
    # The run names the table it trained on, and the base data (and batches: none here).
    assert (
        run.data.tags["data_md5"]
        == hashlib.md5((project / "data/table/table.parquet").read_bytes()).hexdigest()
    )
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    data_dep = next(d for d in lock["stages"]["assemble"]["deps"] if d["path"].endswith(".csv"))
    assert data_dep["md5"] == run.data.tags["base_data_md5"]
    assert run.data.tags["data_batch_count"] == "0"


def test_noop_repro_runs_nothing(project: Path) -> None:
    again = sh(["dvc", "repro"], project)
    assert ran_stages(again.stdout) == set(), again.stdout


def test_push_pull_round_trip(project: Path) -> None:
    before = {**tree_md5(project / "models"), **tree_md5(project / "data/split")}
    sh(["dvc", "push"], project)
    assert any((project / "dvc-remote").rglob("*")), "nothing reached the local remote"
    shutil.rmtree(project / ".dvc/cache")
    shutil.rmtree(project / "models/model")
    shutil.rmtree(project / "data/split")
    assert "deleted" in sh(["dvc", "status"], project).stdout
    sh(["dvc", "pull"], project)
    after = {**tree_md5(project / "models"), **tree_md5(project / "data/split")}
    assert after == before
    assert "up to date" in sh(["dvc", "status"], project).stdout


def test_register_then_worse_model_fails_gate_and_registers_nothing(project: Path) -> None:
    first = sh(["modelops", "register"], project)
    assert "version 1 registered" in first.stdout
    registry = client(project)
    registry.set_registered_model_alias("credit-scoring", "champion", "1")

    def cripple(params: dict) -> None:  # type: ignore[type-arg]
        params["train"]["hist_gradient_boosting"].update(max_iter=4, max_leaf_nodes=2)

    edit_params(project, cripple)
    worse = sh(["dvc", "repro"], project, check=False)
    assert worse.returncode != 0
    assert ran_stages(worse.stdout) == {"train", "evaluate", "gate"}, worse.stdout
    gate = json.loads((project / "reports/gate.json").read_text())
    assert not gate["passed"] and gate["champion"]["champion_version"] == "1"
    assert gate["champion"]["difference"] < 0 and gate["champion"]["p_value"] < 0.05
    assert "FAILED" in (project / "reports/gate.md").read_text()
    refused = sh(["modelops", "register"], project, check=False)
    assert refused.returncode == 1 and "gate did not pass" in refused.stderr
    assert len(registry.search_model_versions("name = 'credit-scoring'")) == 1
    assert str(registry.get_model_version_by_alias("credit-scoring", "champion").version) == "1"


def test_data_change_reruns_everything_and_param_change_only_downstream(project: Path) -> None:
    sh(["git", "checkout", "params.yaml"], project)
    sh(["dvc", "repro"], project)  # back to the good model
    data = project / "data/raw/credit_data.csv"
    frame = pd.read_csv(data)
    extra = frame.sample(60, random_state=1).assign(Amount=lambda f: f.Amount + 5)
    pd.concat([frame, extra]).to_csv(data, index=False)
    assert "credit_data.csv" in sh(["git", "status", "--porcelain"], project).stdout
    assert ran_stages(sh(["dvc", "repro"], project).stdout) == STAGES

    edit_params(project, lambda p: p["gate"].update(min_auc=0.75))
    assert ran_stages(sh(["dvc", "repro"], project).stdout) == {"gate"}


def test_bad_data_fails_validation_with_a_named_column(project: Path) -> None:
    frame = pd.read_csv(project / "data/raw/credit_data.csv").drop(columns=["Income"])
    frame.to_csv(project / "bad.csv", index=False)
    out = sh(
        ["modelops", "validate-data", "--data", "bad.csv", "--report", "bad.json"],
        project,
        check=False,
    )
    assert out.returncode == 1
    assert "column 'Income': missing" in out.stderr
    assert json.loads((project / "bad.json").read_text())["passed"] is False


def churn_table(rows: int = 3000, seed: int = 0) -> pd.DataFrame:
    """A different binary-classification table: numeric and categorical predictors, yes/no label."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, rows).astype(float)
    charges = rng.normal(70, 25, rows).clip(10, 200)
    plan = rng.choice(["basic", "plus", "premium"], rows, p=[0.5, 0.3, 0.2])
    region = rng.choice(["north", "south", "east", "west"], rows)
    logit = -0.04 * tenure + 0.03 * (charges - 70) + np.where(plan == "basic", 0.8, -0.4)
    churn = np.where(rng.random(rows) < 1 / (1 + np.exp(-logit)), "yes", "no")
    charges[rng.random(rows) < 0.03] = np.nan
    return pd.DataFrame(
        {
            "tenure_months": tenure,
            "monthly_charges": charges,
            "plan": plan,
            "region": region,
            "churned": churn,
        }
    )


def test_another_dataset_by_editing_params_only(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "fork")
    churn_table().to_csv(root / "data/raw/churn.csv", index=False)

    def adapt(params: dict) -> None:  # type: ignore[type-arg]
        params["data"] = {
            "path": "data/raw/churn.csv",
            "target": "churned",
            "positive_class": "yes",
            "numeric_features": ["tenure_months", "monthly_charges"],
            "categorical_features": ["plan", "region"],
            "segment_column": "region",
        }
        ranges = {"tenure_months": [0, 120], "monthly_charges": [0, 500]}
        params["data_validation"]["ranges"] = ranges
        params["gate"]["min_auc"] = 0.7
        params["register"]["model_name"] = "churn"

    edit_params(root, adapt)
    run = sh(["dvc", "repro"], root)
    assert ran_stages(run.stdout) == STAGES
    metrics = json.loads((root / "reports/metrics.json").read_text())
    assert metrics["roc_auc"] > 0.7
    assert set(metrics["segments"]) == {"north", "south", "east", "west"}
    assert "churn version 1 registered" in sh(["modelops", "register"], root).stdout
    reference = json.loads((root / "models/model/extra_files/reference.json").read_text())
    assert set(reference["features"]) == {"tenure_months", "monthly_charges", "plan", "region"}
