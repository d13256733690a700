"""`make retrain` in a fresh copy of the project, with a local folder as the data source.

The loop as a team runs it: the first retrain trains on the base data; with nothing new it
registers nothing and commits nothing; production labels fed back with `modelops feedback`
(real prediction log lines, labels arriving later) land as a batch in the source and the next
retrain registers a new version whose run lists that batch; a bad batch is quarantined,
reported by file, column and problem, and registers nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from serving.predlog import Entry, PredictionLog
from tests.conftest import REPO_ROOT, copy_project

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent
MODEL = "credit-scoring"


class Project:
    """A copy of the project on main, sharing the checkout's .venv, its source outside it."""

    def __init__(self, root: Path) -> None:
        self.repo = copy_project(root / "repo")
        self.source = root / "source"
        self.source.mkdir()
        (self.repo / ".venv").symlink_to(REPO_ROOT / ".venv")
        guard = root / "guard-bin"  # make setup must find the venv current, never reinstall
        guard.mkdir()
        (guard / "uv").write_text("#!/bin/sh\necho 'test guard: make setup ran uv' >&2\nexit 97\n")
        (guard / "uv").chmod(0o755)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GITHUB_"))}
        env["PATH"] = f"{guard}{os.pathsep}{BIN}{os.pathsep}{env['PATH']}"
        env["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
        self.env = env
        params = yaml.safe_load((self.repo / "params.yaml").read_text())
        params["source"]["url"] = str(self.source)
        (self.repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        self.git("commit", "-qam", "Point the data source at the team's folder")

    def sh(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            args, cwd=self.repo, env=self.env, capture_output=True, text=True, timeout=600
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"{args} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )
        return done

    def git(self, *args: str) -> str:
        env = {**self.env, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t"}
        env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
        return subprocess.run(
            ["git", *args], cwd=self.repo, env=env, capture_output=True, text=True, check=True
        ).stdout.strip()

    def retrain(self, label: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
        outputs = self.repo / f"build/{label}.env"
        done = self.sh("make", "retrain", f"OUTPUTS={outputs}")
        pairs = (line.split("=", 1) for line in outputs.read_text().splitlines())
        return done, dict(pairs)

    def registry(self) -> MlflowClient:
        return MlflowClient(tracking_uri=f"sqlite:///{self.repo / 'mlflow.db'}")

    def versions(self) -> list[str]:
        return sorted(str(v.version) for v in self.registry().search_model_versions(""))


def new_rows(base: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """Applicants like the base ones (resampled, amounts moved so no row repeats one)."""
    sample = base.sample(rows, random_state=seed).reset_index(drop=True)
    return sample.assign(Amount=sample["Amount"] + 7 + seed)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return Project(tmp_path_factory.mktemp("retrain"))


@pytest.fixture(scope="module")
def base(project: Project) -> pd.DataFrame:
    return pd.read_csv(project.repo / "data/raw/credit_data.csv")


@pytest.fixture(scope="module")
def first(project: Project) -> dict[str, str]:
    """The first retrain in a fresh clone trains on the base data and registers version 1."""
    done, outputs = project.retrain("first")
    assert outputs["created"] == "true" and outputs["version"] == "1", done.stdout
    return outputs


def test_nothing_new_registers_and_commits_nothing(project: Project, first: dict[str, str]) -> None:
    head = project.git("rev-parse", "HEAD")
    assert project.git("log", "-1", "--format=%an %s").startswith("github-actions[bot] retrain:")
    done, outputs = project.retrain("nothing-new")
    assert "no new batch in the source" in done.stdout
    assert (
        "Stage 'train' didn't change" in done.stdout
        or "Data and pipelines are up to date" in done.stdout
    )
    assert outputs["created"] == "false" and outputs["new_batches"] == "0"
    assert project.versions() == ["1"]
    assert project.git("rev-parse", "HEAD") == head, "a retrain with nothing new committed"
    assert "nothing to commit" in done.stdout


@pytest.fixture(scope="module")
def fed_back(project: Project, base: pd.DataFrame, first: dict[str, str]) -> dict[str, object]:
    """Production traffic logged by the service's own writer, labels arriving days later,
    joined by `make feedback` into a batch in the source; then `make retrain`."""
    logs = project.repo / "logs"
    rows = new_rows(base, 600, seed=1)
    features = rows.drop(columns=["Status"])
    writer = PredictionLog(
        str(logs / "date=2026-12-01/predictions-a.jsonl"), {"model_version": "1"}
    )
    writer.start()
    for start in range(0, len(rows), 100):  # six requests of 100 rows
        chunk = features.iloc[start : start + 100]
        records = json.loads(chunk.to_json(orient="records"))
        decisions = ["negative"] * len(records)
        writer.submit(
            Entry(f"req-{start}", time.time(), "/predict", records, [0.5] * len(records), decisions)
        )
    writer.close()
    labels = pd.DataFrame(
        {
            "request_id": [f"req-{i // 100 * 100}" for i in range(len(rows))],
            "row": [i % 100 for i in range(len(rows))],
            "label": rows["Status"],
            "labeled_at": "2026-12-04T10:00:00Z",
        }
    )
    late = pd.DataFrame(
        {"request_id": ["req-unknown"], "row": [0], "label": ["bad"], "labeled_at": ["2026-12-04"]}
    )
    again = labels.head(3)  # a labeler that sent three labels twice
    pd.concat([labels, late, again]).to_csv(project.repo / "labels.csv", index=False)
    feedback = project.sh("make", "feedback", "FEEDBACK_LOGS=logs", "FEEDBACK_LABELS=labels.csv")
    done, outputs = project.retrain("fed-back")
    return {"feedback": feedback, "retrain": done, "outputs": outputs}


def test_feedback_counts_every_label(project: Project, fed_back: dict[str, object]) -> None:
    feedback = fed_back["feedback"]
    assert isinstance(feedback, subprocess.CompletedProcess)
    report = json.loads((project.repo / "build/feedback/report.json").read_text())
    assert report["labels"] == 604 and report["matched"] == 600
    assert report["unmatched_labels"] == 1 and report["duplicate_labels"] == 3
    assert report["conflicting_labels"] == 0 and report["unlabeled_predictions"] == 0
    unmatched = pd.read_csv(project.repo / "build/feedback/unmatched-labels.csv")
    assert unmatched["request_id"].tolist() == ["req-unknown"]
    assert "1 unmatched label(s)" in feedback.stdout
    (batch,) = project.source.glob("feedback-*.parquet")
    assert report["batch"] == str(batch)
    assert len(pd.read_parquet(batch)) == 600


def test_a_new_batch_registers_a_version_that_lists_it(
    project: Project, fed_back: dict[str, object]
) -> None:
    outputs = fed_back["outputs"]
    assert isinstance(outputs, dict)
    assert outputs["created"] == "true" and outputs["version"] == "2", fed_back["retrain"]
    assert outputs["new_batches"] == "1"
    (batch,) = project.source.glob("feedback-*.parquet")
    version = project.registry().get_model_version(MODEL, "2")
    run = project.registry().get_run(version.run_id)
    md5 = __import__("hashlib").md5(batch.read_bytes()).hexdigest()
    assert run.data.tags["data_batches"] == f"{batch.name}:{md5}"
    assert run.data.tags["data_batch_count"] == "1" and version.tags["data_batches"] == "1"
    lineage = project.registry().download_artifacts(run.info.run_id, "data/lineage.json")
    assert json.loads(Path(lineage).read_text())["batches"][0]["rows"] == 600
    # dvc.lock and the reports went into one bot commit; DVC agrees nothing is stale.
    assert project.git("log", "-1", "--format=%an") == "github-actions[bot]"
    changed = project.git("show", "--name-only", "--format=", "HEAD").splitlines()
    assert "dvc.lock" in changed and "reports/batches.json" in changed
    assert project.git("status", "--porcelain", "--untracked-files=no") == ""
    assert "up to date" in project.sh("dvc", "status").stdout


def test_a_bad_batch_is_quarantined_reported_and_registers_nothing(
    project: Project, base: pd.DataFrame, fed_back: dict[str, object]
) -> None:
    bad = new_rows(base, 200, seed=2)
    bad.loc[:4, "Age"] = 500
    bad.loc[10:11, "Status"] = "maybe"
    bad.to_csv(project.source / "zz-2026-12-08.csv", index=False)
    head = project.git("rev-parse", "HEAD")
    done, outputs = project.retrain("bad")
    assert "quarantined** (not trained on): zz-2026-12-08.csv" in done.stdout
    assert "zz-2026-12-08.csv: column 'Age': 5 value(s) outside [16.0, 110.0]" in done.stdout
    assert "column 'Status': 2 label(s) ['maybe'] are not among" in done.stdout
    assert "QUARANTINED" in done.stderr
    assert outputs["created"] == "false" and outputs["quarantined"] == "1"
    assert project.versions() == ["1", "2"]
    report = json.loads((project.repo / "reports/batches.json").read_text())
    fates = {b["name"]: b["status"] for b in report["batches"]}
    assert fates["zz-2026-12-08.csv"] == "quarantined"
    assert [n for n, s in fates.items() if s == "included"] == [
        p.name for p in project.source.glob("feedback-*")
    ]
    # The quarantine itself is recorded in git (the report and the lock), nothing else moved.
    assert project.git("rev-parse", "HEAD~1") == head
    assert project.git("show", "--name-only", "--format=", "HEAD").splitlines() == [
        "dvc.lock",
        "reports/batches.json",
    ]
