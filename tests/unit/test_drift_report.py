"""`modelops drift` end to end on real credit data: verdict JSON, reports, plots, exit codes.

The command runs in-process through the real entry point (`modelops.cli.main`), so the exit
codes asserted here are the ones a scheduled job sees.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelops.bench.drift import inject_drift
from modelops.cli import main
from modelops.config import Params

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_cli(monkeypatch: pytest.MonkeyPatch, repo_root: Path, *args: str) -> int:
    monkeypatch.setattr(
        sys, "argv", ["modelops", *args, "--params", str(repo_root / "params.yaml")]
    )
    try:
        main()
    except SystemExit as done:
        return int(done.code or 0)
    return 0


def prediction_log(path: Path, rows: pd.DataFrame, scores: np.ndarray, version: str) -> None:
    """Lines as the service writes them: one JSON object per prediction."""
    features = rows.drop(columns=["Status"]).astype(object).where(rows.notna(), None)
    with path.open("a") as handle:
        for i, (record, score) in enumerate(zip(features.to_dict("records"), scores, strict=True)):
            line = {
                "request_id": f"{version}-{i}",
                "timestamp": "2026-01-05T10:00:00Z",
                "model_version": version,
                "features": record,
                "score": float(score),
                "decision": "positive" if score >= 0.5 else "negative",
                "environment": "test",
            }
            handle.write(json.dumps(line) + "\n")


@pytest.fixture(scope="module")
def model_dir(trained_model: dict[str, Any]) -> str:
    return str(trained_model["model_dir"])


@pytest.fixture(scope="module")
def test_rows(split_frames: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return split_frames[1]


def test_undrifted_rows_pass_with_full_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repo_root: Path, model_dir: str,
    trained_model: dict[str, Any], params: Params,
) -> None:  # fmt: skip
    out = tmp_path / "report"
    code = run_cli(
        monkeypatch, repo_root, "drift", "--data", str(trained_model["test_path"]),
        "--reference", model_dir, "--out-dir", str(out),
    )  # fmt: skip
    assert code == 0
    verdict = json.loads((out / "drift.json").read_text())
    assert verdict["verdict"] == "ok"
    assert verdict["drifted"] == [] and verdict["warnings"] == []
    names = {c["name"] for c in verdict["columns"]}
    assert names == {*params.data.features, "__score__"}  # scored with the model
    assert any("scored them with the model" in n for n in verdict["notes"])
    for png in ("drift_features.png", "drift_score.png"):
        assert (out / png).read_bytes().startswith(PNG_MAGIC)
    markdown = (out / "drift.md").read_text()
    assert "**Verdict: ok" in markdown and "![drift_features](drift_features.png)" in markdown
    assert all(f"| {f} |" in markdown for f in params.data.features)
    page = (out / "drift.html").read_text()
    assert page.count("data:image/png;base64,") == 2


def test_injected_drift_exits_3_and_names_the_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repo_root: Path, model_dir: str,
    test_rows: pd.DataFrame, trained_model: dict[str, Any], capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    data = tmp_path / "drifted.csv"
    inject_drift(test_rows, seed=2).to_csv(data, index=False)
    train = trained_model["root"] / "train.parquet"
    code = run_cli(
        monkeypatch, repo_root, "drift", "--data", str(data), "--reference", model_dir,
        "--reference-data", str(train), "--out-dir", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == 3
    assert "drift in" in capsys.readouterr().out
    verdict = json.loads((tmp_path / "out" / "drift.json").read_text())
    assert verdict["verdict"] == "drift"
    assert sorted(verdict["drifted"]) == ["Amount", "Home", "Income"]
    tests = {c["name"]: c["test"] for c in verdict["columns"]}
    assert tests["Income"] == "ks" and tests["Home"] == "chi2"  # exact, on the training rows
    psi = {c["name"]: c["psi"] for c in verdict["columns"]}
    assert min(psi["Income"], psi["Amount"], psi["Home"]) > 0.25
    assert (
        max(v for k, v in psi.items() if k not in ("Income", "Amount", "Home", "__score__")) < 0.1
    )


def test_prediction_logs_use_the_served_scores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repo_root: Path, model_dir: str,
    test_rows: pd.DataFrame,
) -> None:  # fmt: skip
    """Logs of two model versions; --model-version keeps one; a torn last line is skipped."""
    logs = tmp_path / "logs"
    logs.mkdir()
    drifted = inject_drift(test_rows, seed=4)
    prediction_log(logs / "a.jsonl", test_rows, np.full(len(test_rows), 0.3), "1")
    prediction_log(logs / "b.jsonl", drifted, np.full(len(drifted), 0.3), "2")
    with (logs / "b.jsonl").open("a") as handle:
        handle.write('{"request_id": "torn", "features": {"Inc')
    out = tmp_path / "out"
    code = run_cli(
        monkeypatch, repo_root, "drift", "--data", str(logs), "--reference", model_dir,
        "--model-version", "2", "--out-dir", str(out),
    )  # fmt: skip
    verdict = json.loads((out / "drift.json").read_text())
    assert code == 3
    assert verdict["rows"] == len(drifted)
    assert verdict["sources"]["model_versions_in_logs"] == {"1": len(test_rows), "2": len(drifted)}
    assert any("incomplete last line skipped" in n for n in verdict["notes"])
    score = next(c for c in verdict["columns"] if c["name"] == "__score__")
    # every served score is 0.3: all rows in one training decile, so the score drifted too
    assert score["status"] == "drift" and max(score["current_share"]) == 1.0
    assert not any("scored them with the model" in n for n in verdict["notes"])

    code = run_cli(
        monkeypatch, repo_root, "drift", "--data", str(logs / "a.jsonl"),
        "--reference", str(Path(model_dir) / "extra_files" / "reference.json"),
        "--out-dir", str(out), "--fail-on", "warning",
    )  # fmt: skip
    verdict = json.loads((out / "drift.json").read_text())
    assert verdict["verdict"] == "drift" and verdict["drifted"] == ["__score__"]
    assert code == 3


def test_warning_exits_0_unless_asked_and_few_rows_exit_4(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repo_root: Path, model_dir: str,
    test_rows: pd.DataFrame,
) -> None:  # fmt: skip
    data = tmp_path / "moderate.parquet"
    inject_drift(test_rows, seed=1, scale={"Income": 1.2}, move=None).to_parquet(data)
    args = ("drift", "--data", str(data), "--reference", model_dir, "--out-dir", str(tmp_path))
    assert run_cli(monkeypatch, repo_root, *args) == 0
    assert json.loads((tmp_path / "drift.json").read_text())["warnings"] == ["Income"]
    assert run_cli(monkeypatch, repo_root, *args, "--fail-on", "warning") == 3

    few = tmp_path / "few.csv"
    inject_drift(test_rows.head(120), seed=1).to_csv(few, index=False)
    code = run_cli(
        monkeypatch, repo_root, "drift", "--data", str(few), "--reference", model_dir,
        "--out-dir", str(tmp_path),
    )  # fmt: skip
    assert code == 4
    assert json.loads((tmp_path / "drift.json").read_text())["verdict"] == "inconclusive"

    empty = tmp_path / "quiet-week.jsonl"
    empty.write_text("")
    code = run_cli(
        monkeypatch, repo_root, "drift", "--data", str(empty), "--reference", model_dir,
        "--out-dir", str(tmp_path),
    )  # fmt: skip
    verdict = json.loads((tmp_path / "drift.json").read_text())
    assert code == 4
    assert verdict["rows"] == 0 and verdict["columns"] == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("missing_column", "no column(s) ['Income']"),
        ("bad_json", "bad.jsonl:2: not valid JSON"),
        ("no_features", "bad.jsonl:1: no 'features' object"),
        ("bad_number", "'Amount': 1 value(s) are not numbers"),
    ],
)
def test_bad_input_exits_1_with_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repo_root: Path, model_dir: str,
    test_rows: pd.DataFrame, capsys: pytest.CaptureFixture[str], content: str, message: str,
) -> None:  # fmt: skip
    if content == "missing_column":
        data = tmp_path / "bad.csv"
        test_rows.drop(columns=["Income"]).to_csv(data, index=False)
    elif content == "bad_number":
        data = tmp_path / "bad.csv"
        rows = test_rows.astype({"Amount": object})
        rows.loc[3, "Amount"] = "a lot"
        rows.to_csv(data, index=False)
    else:
        data = tmp_path / "bad.jsonl"
        prediction_log(data, test_rows.head(3), np.full(3, 0.2), "1")
        lines = data.read_text().splitlines()
        lines[1 if content == "bad_json" else 0] = '{"oops": ' if content == "bad_json" else "{}"
        data.write_text("\n".join(lines) + "\n")
    code = run_cli(
        monkeypatch, repo_root, "drift", "--data", str(data), "--reference", model_dir,
        "--out-dir", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out" / "drift.json").exists()


def test_usage_errors_exit_2(
    monkeypatch: pytest.MonkeyPatch, repo_root: Path, tmp_path: Path
) -> None:
    assert run_cli(monkeypatch, repo_root, "drift") == 2  # --data is required
    code = run_cli(monkeypatch, repo_root, "drift", "--data", "x.csv", "--fail-on", "maybe")
    assert code == 2
    code = run_cli(
        monkeypatch, repo_root, "drift", "--data", str(tmp_path), "--reference", str(tmp_path)
    )
    assert code == 1  # an empty folder is bad input, not a crash


def test_partitioned_logs_with_redacted_columns_judge_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repo_root: Path, model_dir: str,
    test_rows: pd.DataFrame,
) -> None:  # fmt: skip
    """The service's day partitions (under an environment prefix, as the log bucket holds
    them) are read whole; columns the service dropped or hashed are not judged, and the
    report says so, while the drift it can still see is caught."""
    drifted = inject_drift(test_rows, seed=4)  # Income, Amount and Home moved
    logs = tmp_path / "bucket"
    for day, part in (("2026-01-05", drifted.iloc[:500]), ("2026-01-06", drifted.iloc[500:])):
        folder = logs / "production" / f"date={day}"
        folder.mkdir(parents=True)
        prediction_log(folder / "predictions-pod-a.jsonl", part, np.full(len(part), 0.3), "1")
    for file in logs.rglob("*.jsonl"):
        lines = [json.loads(x) for x in file.read_text().splitlines()]
        for line in lines:
            del line["features"]["Income"]
            line["features"]["Home"] = "9f" * 32  # what an HMAC of the value looks like
            line["redacted"] = ["Home", "Income"]
            line["environment"] = "production"
        file.write_text("".join(json.dumps(x) + "\n" for x in lines))
    staging = logs / "staging/date=2026-01-06"  # another environment's logs, left out
    staging.mkdir(parents=True)
    prediction_log(staging / "predictions-pod-b.jsonl", test_rows.head(50), np.full(50, 0.3), "1")
    out = tmp_path / "out"
    code = run_cli(
        monkeypatch, repo_root, "drift", "--data", str(logs), "--reference", model_dir,
        "--environment", "production", "--out-dir", str(out),
    )  # fmt: skip
    verdict = json.loads((out / "drift.json").read_text())
    assert code == 3 and verdict["rows"] == len(drifted)
    assert "left out 50 rows logged by other environments" in verdict["notes"]
    judged = {c["name"] for c in verdict["columns"]}
    assert "Income" not in judged and "Home" not in judged and "Amount" in judged
    assert "Amount" in verdict["drifted"]
    assert any("Home, Income: redacted in the prediction log" in n for n in verdict["notes"])
