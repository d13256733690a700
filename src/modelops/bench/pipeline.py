"""Pipeline benchmark: cold and no-op `dvc repro` on a fresh clone; 1M-row training cost.

    python -m modelops.bench.pipeline --out bench/results/pipeline.json [--rows 1000000]

Training runs in a child process per model so its peak RSS is measured on its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

GOALS = {
    "cold_repro_seconds": 60,
    "noop_repro_seconds": 5,
    "train_1m_seconds": 120,
    "train_1m_peak_gb": 4,
}


def synthetic_credit(frame: pd.DataFrame, rows: int, seed: int = 0) -> pd.DataFrame:
    """Rows shaped like the credit data: resampled records, jittered numerics, same gaps."""
    rng = np.random.default_rng(seed)
    out = frame.sample(rows, replace=True, random_state=seed).reset_index(drop=True)
    for column in out.select_dtypes("number").columns:
        values = out[column].to_numpy(dtype=float)
        out[column] = np.round(values * rng.normal(1.0, 0.05, rows), 1)
    return out


def _timed(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True, text=True)
    return round(time.perf_counter() - started, 2)


def bench_repro(repo: Path) -> dict[str, float]:
    """Clone the repository, then time `dvc repro` cold, no-op, and forced through all stages."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
        print("cold dvc repro (fresh clone, empty DVC cache and MLflow store) ...", flush=True)
        cold = _timed(["dvc", "repro"], clone, env)
        print(f"  {cold}s; no-op dvc repro ...", flush=True)
        noop = _timed(["dvc", "repro"], clone, env)
        print(f"  {noop}s; dvc repro --force (all five stages) ...", flush=True)
        forced = _timed(["dvc", "repro", "--force"], clone, env)
        print(f"  {forced}s", flush=True)
    return {"cold_repro_seconds": cold, "noop_repro_seconds": noop, "forced_repro_seconds": forced}


def _train_child(params_path: str, rows: int, model: str) -> None:
    """Child process body: generate, fit, print JSON with timings and peak RSS."""
    from modelops.config import load_params
    from modelops.pipeline.data import read_raw
    from modelops.pipeline.train import fit

    params = load_params(params_path)
    params = params.model_copy(update={"train": params.train.model_copy(update={"model": model})})
    started = time.perf_counter()
    frame = synthetic_credit(read_raw(Path(params_path).parent / params.data.path), rows)
    generated = time.perf_counter() - started
    _, _, _, fit_seconds = fit(params, frame)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "model": model,
                "rows": rows,
                "generate_seconds": round(generated, 2),
                "fit_seconds": round(fit_seconds, 2),
                "peak_rss_gb": round(peak_kb / 2**20, 3),
            }
        )
    )


def bench_training(params_path: Path, rows: int) -> list[dict[str, float]]:
    results = []
    for model in ("hist_gradient_boosting", "logistic_regression"):
        print(f"training {model} on {rows:,} synthetic rows ...", flush=True)
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "modelops.bench.pipeline",
                "--child",
                model,
                "--rows",
                str(rows),
                "--params",
                str(params_path),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"  fit {result['fit_seconds']}s, peak RSS {result['peak_rss_gb']} GB", flush=True)
        results.append(result)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("bench/results/pipeline.json"))
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _train_child(str(args.params), args.rows, args.child)
        return
    repo = Path(
        subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    repro = bench_repro(repo)
    training = bench_training(args.params.resolve(), args.rows)
    default = training[0]  # the model params.yaml trains by default
    figures = {
        **repro,
        "train_1m_seconds": default["fit_seconds"],
        "train_1m_peak_gb": default["peak_rss_gb"],
    }
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "figures": figures,
        "goals": GOALS,
        "meets_goals": {k: figures[k] <= goal for k, goal in GOALS.items()},
        "training": training,
        "ratio_hgb_to_logistic_fit_time": round(
            float(training[0]["fit_seconds"]) / max(float(training[1]["fit_seconds"]), 1e-9), 2
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["figures"], indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
