"""The performance tooling runs for real, briefly: the locust load test (passes on a healthy
service, fails on an error or a p99 over the limit) and the side-by-side wrk benchmark."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from serving.process import ServiceProcess

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def service(
    trained_model: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    tmp = tmp_path_factory.mktemp("perf")
    env = {"MODELOPS_PREDICTION_LOG": "", "MODELOPS_MAX_BATCH_ROWS": "10"}
    with ServiceProcess(model=trained_model["model_dir"], env=env, log=tmp / "s.log") as running:
        yield running


def loadtest_params(tmp: Path, **loadtest: Any) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["serve"]["loadtest"].update({"users": 4, "spawn_rate": 4, "user_rps": 5, **loadtest})
    path = tmp / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def run_loadtest(
    url: str, params: Path, out: Path, data: Path
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "modelops.bench.serve", "loadtest", "--host", url,
         "--params", str(params), "--data", str(data), "--out", str(out), "--run-time-s", "8"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert out.is_file(), (
        f"the load test wrote no summary:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
    )
    return done, json.loads(out.read_text())


def test_loadtest_passes_on_a_healthy_service(
    service: ServiceProcess, tmp_path: Path, trained_model: dict[str, Any]
) -> None:
    params = loadtest_params(tmp_path, max_p99_ms=1000)
    done, summary = run_loadtest(
        service.url, params, tmp_path / "lt.json", Path(trained_model["test_path"])
    )
    assert done.returncode == 0, done.stderr
    assert summary["passed"] and summary["reasons"] == []
    assert summary["requests"] >= 10 and summary["failures"] == 0
    assert 0 < summary["p50_ms"] <= summary["p99_ms"] <= 1000


def test_loadtest_fails_over_the_p99_limit(
    service: ServiceProcess, tmp_path: Path, trained_model: dict[str, Any]
) -> None:
    params = loadtest_params(tmp_path, max_p99_ms=0.001)
    done, summary = run_loadtest(
        service.url, params, tmp_path / "lt.json", Path(trained_model["test_path"])
    )
    assert done.returncode == 1
    assert not summary["passed"]
    assert any("serve.loadtest.max_p99_ms 0.001" in r for r in summary["reasons"])
    assert "load test failed" in done.stderr


def test_loadtest_fails_on_any_error(trained_model: dict[str, Any], tmp_path: Path) -> None:
    """A service that takes at most 5 records refuses the locustfile's 10-record batches."""
    env = {"MODELOPS_PREDICTION_LOG": "", "MODELOPS_MAX_BATCH_ROWS": "5"}
    params = loadtest_params(tmp_path, max_p99_ms=1000)
    with ServiceProcess(model=trained_model["model_dir"], env=env) as small:
        done, summary = run_loadtest(
            small.url, params, tmp_path / "lt.json", Path(trained_model["test_path"])
        )
    assert done.returncode == 1
    assert summary["failures"] > 0 and summary["error_rate"] > 0
    assert any(r.startswith("error rate") for r in summary["reasons"])


def test_bench_serve_compares_mlflow_and_the_ceiling(
    trained_model: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "serve.json"
    done = subprocess.run(
        [sys.executable, "-m", "modelops.bench.serve", "bench",
         "--model", str(trained_model["model_dir"]), "--data", str(trained_model["test_path"]),
         "--out", str(out), "--seconds", "1", "--warmup", "1", "--concurrency", "4",
         "--repeat", "2", "--rows", "20", "--workers", "1"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    runs = {(r["server"], r["route"]): r for r in result["runs"]}
    assert len(result["every_run"]) == 8  # 2 interleaved rounds of 4
    for key, run in runs.items():
        both = [r for r in result["every_run"] if (r["server"], r["route"]) == key]
        assert run["requests_per_s"] == min(r["requests_per_s"] for r in both)  # lower median
        assert run["p99_ms"] == pytest.approx(sum(r["p99_ms"] for r in both) / 2)
        assert run["requests"] == sum(r["requests"] for r in both)
    assert set(runs) == {
        ("ours", "/predict"),
        ("ours", "/invocations"),
        ("mlflow", "/invocations"),
        ("ceiling", "/predict"),
    }
    for run in runs.values():
        assert run["requests"] > 0 and run["errors"] == 0
        assert 0 < run["p50_ms"] <= run["p99_ms"]
    assert runs[("ours", "/predict")]["worker_shares"] == [1.0]  # one worker: all of it
    assert runs[("mlflow", "/invocations")]["worker_shares"] is None
    ratio = result["ratio_ours_to_mlflow"]["/invocations c=4"]
    expected = (
        runs[("ours", "/invocations")]["requests_per_s"]
        / runs[("mlflow", "/invocations")]["requests_per_s"]
    )
    assert ratio == pytest.approx(expected, rel=0.01)
    assert ratio > 3  # even on a busy machine the gap is an order of magnitude or more
    assert "| mlflow | /invocations | 4 |" in done.stdout and "| 100% |" in done.stdout
    # the ceiling does no work, so /predict keeps a share of its throughput, never more
    share = result["ratio_to_ceiling"]["/predict c=4"]
    ceiling_rps = runs[("ceiling", "/predict")]["requests_per_s"]
    assert share == pytest.approx(runs[("ours", "/predict")]["requests_per_s"] / ceiling_rps, 0.01)
    assert 0 < share < 1
    assert "ours / ceiling: /predict c=4:" in done.stdout


def test_locust_stats_without_requests_are_none_not_a_crash(tmp_path: Path) -> None:
    """Locust writes N/A for latencies when no request completed; that is no data, not 0."""
    from modelops.bench.serve import locust_stats

    header = "Type,Name,Request Count,Failure Count,Requests/s,50%,99%,Max Response Time"
    (tmp_path / "locust_stats.csv").write_text(f"{header}\n,Aggregated,0,0,0.0,N/A,N/A,N/A\n")
    stats = locust_stats(tmp_path / "locust")
    assert stats["requests"] == 0 and stats["p50_ms"] is None and stats["p99_ms"] is None
