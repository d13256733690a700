"""Retrain benchmark: `modelops retrain` (what `make retrain` runs) on 1, 10 and 100 batches.

    python -m modelops.bench.retrain --out bench/results/retrain.json [--batches 1 10 100]

For each count, a fresh clone whose source folder holds that many batches of 10,000 labeled
rows (resampled credit applicants, jittered numerics kept inside data_validation.ranges):
`retrain` times a retrain that finds new batches (assemble, split, train, evaluate, gate,
register; the base data's validation is already in git), `noop` a second retrain that finds
nothing new (DVC hashes the source, every stage is up to date). Nothing is committed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from modelops.bench.pipeline import synthetic_credit
from modelops.config import load_params
from modelops.pipeline.data import read_raw

GOALS = {"retrain_100_batches_seconds": 180}
ROWS_PER_BATCH = 10_000


def write_batches(folder: Path, base: pd.DataFrame, count: int, ranges: dict[str, tuple]) -> None:
    """`count` CSV batches named by day, so they sort in arrival order."""
    folder.mkdir(parents=True, exist_ok=True)
    start = np.datetime64("2026-01-01")
    for i in range(count):
        batch = synthetic_credit(base, ROWS_PER_BATCH, seed=1000 + i)
        for column, (low, high) in ranges.items():
            batch[column] = batch[column].clip(low, high)
        batch.to_csv(folder / f"{start + i}-batch.csv", index=False)


def _retrain(clone: Path, env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        ["modelops", "retrain", "--no-commit", "--summary", "build/retrain.md"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    seconds = round(time.perf_counter() - started, 2)
    if done.returncode != 0:
        raise SystemExit(
            f"retrain failed in {clone}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return seconds, done.stdout


def bench_one(repo: Path, count: int, base: pd.DataFrame, ranges: dict[str, tuple]) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    with tempfile.TemporaryDirectory(prefix="bench-retrain-") as tmp:
        clone, source = Path(tmp) / "clone", Path(tmp) / "source"
        subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
        write_batches(source, base, count, ranges)
        params = yaml.safe_load((clone / "params.yaml").read_text())
        params["source"] = {"url": str(source), "window": {"batches": max(count, 100)}}
        (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        print(f"{count} batch(es) of {ROWS_PER_BATCH:,} rows: retrain ...", flush=True)
        load = os.getloadavg()[0]  # a shared machine: read the figures with the load they had
        seconds, out = _retrain(clone, env)
        run = json.loads((clone / "models/run.json").read_text())
        metrics = json.loads((clone / "reports/metrics.json").read_text())
        print(f"  {seconds}s (fit {run['fit_seconds']}s); retrain with nothing new ...", flush=True)
        noop, out = _retrain(clone, env)
        assert "no new batch" in out, out
        print(f"  {noop}s", flush=True)
        return {
            "batches": count,
            "rows": int(metrics["test_rows"]) + int(run["train_rows"]),
            "retrain_seconds": seconds,
            "fit_seconds": run["fit_seconds"],
            "noop_seconds": noop,
            "test_roc_auc": round(metrics["roc_auc"], 4),
            "load_average_1m": round(load, 2),
        }


def summarize(results: list[dict]) -> dict:
    """The JSON report: figures per batch count, the goal, and the 100-to-1 ratio."""
    by_count = {r["batches"]: r for r in results}
    figures = {f"retrain_{r['batches']}_batches_seconds": r["retrain_seconds"] for r in results}
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "rows_per_batch": ROWS_PER_BATCH,
        "figures": figures,
        "goals": GOALS,
        "meets_goals": {k: figures[k] <= goal for k, goal in GOALS.items() if k in figures},
        "runs": results,
    }
    if 1 in by_count and 100 in by_count:
        report["ratio_100_to_1_batches"] = round(
            by_count[100]["retrain_seconds"] / by_count[1]["retrain_seconds"], 2
        )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("bench/results/retrain.json"))
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    repo = Path(
        subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    params = load_params(args.params)
    base = read_raw(args.params.parent / params.data.path)
    ranges = dict(params.data_validation.ranges)
    results: list[dict] = []
    for count in args.batches:  # the report is rewritten after each count: a long run keeps
        results.append(bench_one(repo, count, base, ranges))  # what it measured so far
        report = summarize(results)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["figures"], indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
