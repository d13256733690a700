"""Serving performance: our service against `mlflow models serve` and the ceiling, and the
locust load test.

    python -m modelops.bench.serve bench --model models/model --out bench/results/serve.json
    python -m modelops.bench.serve loadtest --host http://127.0.0.1:8000 \
        --out bench/results/loadtest.json

`bench` starts both servers on the same model folder with 2 workers each, drives each with
wrk (1-row requests sampled from the real test split, concurrency 10 and 100), and writes
requests/s and p50/p99 per server and route (each the median over --repeat interleaved
rounds), the ratios, and the goals met. Our /invocations
takes the same request bodies as MLflow's, so that pair is the like-for-like comparison;
/predict (our native route) is reported next to it. The ceiling (modelops.bench.ceiling) is
the same uvicorn setup answering our /predict's bytes with no work at all, driven with the
same bodies in the same rounds: `ratio_to_ceiling` is the share of the bare server's
throughput that /predict keeps with validation, scoring, metrics and the prediction log on.

`loadtest` runs serving/locustfile.py headless against a running service for
params serve.loadtest.run_time_s and fails (exit 1) on any failed request or a p99 above
serve.loadtest.max_p99_ms.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

GOALS = {
    "ours_rps_c100": 3500.0,
    "ours_p99_ms_c10": 10.0,
    "ratio_vs_mlflow": 40.0,
    "ratio_to_ceiling": 0.4,
}
WRK_MARK = "WRKJSON "
LUA = """
local bodies = {%(bodies)s}
local i = 0
request = function()
  i = i %% #bodies + 1
  return wrk.format("POST", "%(path)s", {["Content-Type"] = "application/json"}, bodies[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%(mark)s{"requests": %%d, "duration_us": %%d, "connect": %%d, "read": %%d, ' ..
    '"write": %%d, "status": %%d, "timeout": %%d, "p50_us": %%d, "p99_us": %%d, ' ..
    '"max_us": %%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


@dataclass
class Run:
    """One wrk run against one server and route at one concurrency."""

    server: str
    route: str
    concurrency: int
    requests: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    worker_shares: list[float] | None = None  # ours: each worker's share of the requests


def sample_rows(data: Path, params_path: Path, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """n records of the real test split, missing values as None, feature columns only."""
    from modelops.config import load_params
    from modelops.pipeline.data import coerce_features, read_split

    features = coerce_features(read_split(data), load_params(params_path).data)
    picked = features.sample(min(n, len(features)), random_state=seed)
    return [
        {k: (None if v is None or v != v else v) for k, v in r.items()}
        for r in picked.astype(object).to_dict("records")
    ]


def bodies(rows: list[dict[str, Any]], route: str) -> list[str]:
    """One JSON body per row: a record for /predict, MLflow's dataframe_split otherwise."""
    if route == "/predict":
        return [json.dumps(r) for r in rows]
    return [
        json.dumps({"dataframe_split": {"columns": list(r), "data": [list(r.values())]}})
        for r in rows
    ]


def wrk_script(path: str, payloads: list[str], folder: Path) -> Path:
    quoted = ",\n".join(f"[==[{p}]==]" for p in payloads)
    script = folder / f"wrk{path.replace('/', '_')}.lua"
    script.write_text(LUA % {"bodies": quoted, "path": path, "mark": WRK_MARK})
    return script


def run_wrk(url: str, script: Path, concurrency: int, seconds: int, threads: int) -> dict:
    """Run wrk and return the JSON its done() hook prints."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("error: wrk not found; install it (Debian: apt-get install wrk)")
    out = subprocess.run(
        [wrk, f"-t{min(threads, concurrency)}", f"-c{concurrency}", f"-d{seconds}s",
         "--timeout", "30s", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    line = next((x for x in out.splitlines() if x.startswith(WRK_MARK)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    return dict(json.loads(line[len(WRK_MARK) :]))


def to_run(server: str, route: str, concurrency: int, raw: dict[str, Any]) -> Run:
    errors = sum(raw[k] for k in ("connect", "read", "write", "status", "timeout"))
    return Run(
        server=server,
        route=route,
        concurrency=concurrency,
        requests=raw["requests"],
        requests_per_s=round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        p50_ms=round(raw["p50_us"] / 1000, 3),
        p99_ms=round(raw["p99_us"] / 1000, 3),
        max_ms=round(raw["max_us"] / 1000, 3),
        errors=errors,
    )


def bench(args: argparse.Namespace) -> dict[str, Any]:
    rows = sample_rows(args.data, args.params, args.rows)
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",  # both servers: sklearn's OpenMP threads only add contention
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    from serving.process import ServiceProcess, free_port

    ours_port, mlflow_port, ceiling_port = free_port(), free_port(), free_port()
    runs: list[Run] = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        folder = Path(tmp)
        ours_env = {
            **env,
            "MODELOPS_PREDICTION_LOG": str(folder / "predictions"),
            "MODELOPS_METRICS_DIR": str(folder / "metrics"),
            "MODELOPS_METRICS_FLUSH_SECONDS": "0.2",
        }
        ours_cmd = [sys.executable, "-m", "serving", "--model", str(args.model),
                    "--port", str(ours_port), "--workers", str(args.workers)]  # fmt: skip
        mlflow_cmd = [str(bin_dir / "mlflow"), "models", "serve", "-m", str(args.model),
                      "--env-manager", "local", "-w", str(args.workers),
                      "-h", "127.0.0.1", "-p", str(mlflow_port)]  # fmt: skip
        ceiling_cmd = [sys.executable, "-m", "modelops.bench.ceiling", "--port",
                       str(ceiling_port), "--workers", str(args.workers),
                       "--answer", str(folder / "answer.json")]  # fmt: skip
        ours_url, mlflow_url = f"http://127.0.0.1:{ours_port}", f"http://127.0.0.1:{mlflow_port}"
        ceiling_url = f"http://127.0.0.1:{ceiling_port}"
        targets = [
            ("ours", "/predict", ours_url),
            ("ours", "/invocations", ours_url),
            ("mlflow", "/invocations", mlflow_url),
            ("ceiling", "/predict", ceiling_url),
        ]
        scripts = {
            route: wrk_script(route, bodies(rows, route), folder)
            for route in ("/predict", "/invocations")
        }
        ours = ServiceProcess(ours_cmd, port=ours_port, env=ours_env, log=folder / "ours.log")
        mlflow = ServiceProcess(
            mlflow_cmd, port=mlflow_port, env=env, log=folder / "mlflow.log", ready_path="/ping"
        )
        ceiling_log = folder / "ceiling.log"
        ceiling = ServiceProcess(ceiling_cmd, port=ceiling_port, env=env, log=ceiling_log)
        with ours, mlflow:
            same_answers(ours_url, mlflow_url, rows[:20])
            answer = httpx.post(f"{ours_url}/predict", json=rows[0], timeout=60)
            (folder / "answer.json").write_bytes(answer.raise_for_status().content)
            with ceiling:
                for repeat in range(args.repeat):  # rounds interleave the servers in time
                    for name, route, base in targets:
                        for concurrency in args.concurrency:
                            label = f"[{repeat + 1}/{args.repeat}] {name} {route} c={concurrency}"
                            print(label, flush=True)
                            script = scripts[route]
                            run_wrk(base + route, script, concurrency, args.warmup, args.threads)
                            before = requests_per_worker(folder / "metrics", route)
                            raw = run_wrk(
                                base + route, script, concurrency, args.seconds, args.threads
                            )
                            runs.append(to_run(name, route, concurrency, raw))
                            if name == "ours":
                                runs[-1].worker_shares = shares(before, folder / "metrics", route)
                            print(f"  {runs[-1]}", flush=True)
    return summarize(median_runs(runs), args, load_before, runs)


def median_runs(runs: list[Run]) -> list[Run]:
    """Per server, route and concurrency, the median of each figure over the rounds (this
    machine is shared: single runs swing by tens of percent); errors are summed."""
    groups: dict[tuple[str, str, int], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.server, run.route, run.concurrency), []).append(run)
    out = []
    for (server, route, concurrency), group in groups.items():
        by_rate = sorted(group, key=lambda r: r.requests_per_s)[(len(group) - 1) // 2]
        out.append(
            Run(
                server=server,
                route=route,
                concurrency=concurrency,
                requests=sum(r.requests for r in group),
                requests_per_s=by_rate.requests_per_s,
                p50_ms=float(np.median([r.p50_ms for r in group])),
                p99_ms=float(np.median([r.p99_ms for r in group])),
                max_ms=max(r.max_ms for r in group),
                errors=sum(r.errors for r in group),
                worker_shares=by_rate.worker_shares,
            )
        )
    return out


def requests_per_worker(metrics_dir: Path, route: str) -> dict[str, float]:
    """Requests each of our workers has counted on `route` (its own multiprocess file)."""
    from prometheus_client import multiprocess

    time.sleep(0.5)  # workers apply their tallied counters every 0.2 s
    counts = {}
    for file in sorted(metrics_dir.glob("counter_*.db")):
        merged = multiprocess.MultiProcessCollector.merge([str(file)], accumulate=False)
        counts[file.name] = sum(
            s.value
            for metric in merged
            for s in metric.samples
            if s.name == "modelops_http_requests_total" and s.labels.get("route") == route
        )
    return counts


def shares(before: dict[str, float], metrics_dir: Path, route: str) -> list[float]:
    """Each worker's share of the requests of the last run (SO_REUSEPORT spreads them)."""
    after = requests_per_worker(metrics_dir, route)
    delta = [after[k] - before.get(k, 0.0) for k in sorted(after)]
    total = sum(delta) or 1.0
    return [round(d / total, 3) for d in delta]


def same_answers(ours: str, mlflow: str, rows: list[dict[str, Any]]) -> None:
    """Both servers must give the same probabilities before their speed means anything."""
    body = {"dataframe_records": rows}
    a = httpx.post(f"{ours}/invocations", json=body, timeout=60).json()["predictions"]
    b = httpx.post(f"{mlflow}/invocations", json=body, timeout=60).json()["predictions"]
    gap = max(abs(x - y) for ra, rb in zip(a, b, strict=True) for x, y in zip(ra, rb, strict=True))
    if gap > 1e-6:
        raise RuntimeError(f"the servers disagree by {gap} on the same rows; not benchmarking")


def summarize(
    runs: list[Run], args: argparse.Namespace, load_before: Any, every: list[Run]
) -> dict[str, Any]:
    by = {(r.server, r.route, r.concurrency): r for r in runs}
    ratios = {}
    for c in args.concurrency:
        mlflow_rps = by[("mlflow", "/invocations", c)].requests_per_s
        for route in ("/invocations", "/predict"):
            ratios[f"{route} c={c}"] = round(by[("ours", route, c)].requests_per_s / mlflow_rps, 1)
    to_ceiling = {
        f"/predict c={c}": round(
            by[("ours", "/predict", c)].requests_per_s
            / by[("ceiling", "/predict", c)].requests_per_s,
            3,
        )
        for c in args.concurrency
    }
    goals: dict[str, Any] = {}
    for route in ("/invocations", "/predict"):
        c_low, c_high = min(args.concurrency), max(args.concurrency)
        high, low = by[("ours", route, c_high)], by[("ours", route, c_low)]
        ratio = min(ratios[f"{route} c={c}"] for c in args.concurrency)
        goals[route] = {
            f"rps_c{c_high}>={GOALS['ours_rps_c100']:.0f}": high.requests_per_s
            >= GOALS["ours_rps_c100"],
            f"p99_ms_c{c_low}<={GOALS['ours_p99_ms_c10']:.0f}": low.p99_ms
            <= GOALS["ours_p99_ms_c10"],
            f"ratio>={GOALS['ratio_vs_mlflow']:.0f}": ratio >= GOALS["ratio_vs_mlflow"],
        }
    goals["/predict"][f"ratio_to_ceiling>={GOALS['ratio_to_ceiling']}"] = (
        min(to_ceiling.values()) >= GOALS["ratio_to_ceiling"]
    )
    return {
        "model": str(args.model),
        "load_generator": "wrk, 1-row requests sampled from the test split, keep-alive",
        "workers_per_server": args.workers,
        "seconds_per_run": args.seconds,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        },
        "rounds": args.repeat,
        "runs": [asdict(r) for r in runs],
        "every_run": [asdict(r) for r in every],
        "ratio_ours_to_mlflow": ratios,
        "ratio_to_ceiling": to_ceiling,
        "goals": goals,
    }


def table(result: dict[str, Any]) -> str:
    lines = [
        "| server | route | concurrency | requests/s | p50 ms | p99 ms | errors | worker split |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in result["runs"]:
        split = "/".join(f"{share:.0%}" for share in r["worker_shares"] or []) or "n/a"
        lines.append(
            f"| {r['server']} | {r['route']} | {r['concurrency']} | {r['requests_per_s']:,.0f} "
            f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['errors']} | {split} |"
        )
    ratios = ", ".join(f"{k}: {v}x" for k, v in result["ratio_ours_to_mlflow"].items())
    ceiling = ", ".join(f"{k}: {v:.0%}" for k, v in result["ratio_to_ceiling"].items())
    return "\n".join([*lines, "", f"ours / mlflow: {ratios}", f"ours / ceiling: {ceiling}"])


# -- load test ------------------------------------------------------------------------------


def _stat(value: str) -> float | None:
    """A number from locust's CSV; None where it writes N/A (no request completed)."""
    return None if value.strip() == "N/A" else float(value)


def locust_stats(csv_prefix: Path) -> dict[str, float | None]:
    """The Aggregated row of locust's --csv stats file (latencies None without requests)."""
    with Path(f"{csv_prefix}_stats.csv").open() as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    total = rows["Aggregated"]
    return {
        "requests": float(total["Request Count"]),
        "failures": float(total["Failure Count"]),
        "requests_per_s": float(total["Requests/s"]),
        "p50_ms": _stat(total["50%"]),
        "p99_ms": _stat(total["99%"]),
        "max_ms": _stat(total["Max Response Time"]),
    }


def loadtest(args: argparse.Namespace) -> dict[str, Any]:
    from modelops.config import load_params

    settings = load_params(args.params).serve.loadtest
    run_time = args.run_time_s or settings.run_time_s
    import serving

    locustfile = Path(serving.__file__).parent / "locustfile.py"
    with tempfile.TemporaryDirectory(prefix="loadtest-") as tmp:
        prefix = Path(tmp) / "locust"
        env = {
            **os.environ,
            "MODELOPS_LOADTEST_DATA": str(args.data),
            "MODELOPS_PARAMS": str(args.params),
        }
        done = subprocess.run(
            [str(Path(sys.executable).parent / "locust"), "-f", str(locustfile), "--headless",
             "-u", str(settings.users), "-r", str(settings.spawn_rate), "-t", f"{run_time}s",
             "--host", args.host, "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING",
             "--exit-code-on-error", "0", "--stop-timeout", "5"],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0 or not Path(f"{prefix}_stats.csv").is_file():
            raise SystemExit(f"error: locust failed ({done.returncode}):\n{done.stderr[-3000:]}")
        stats = locust_stats(prefix)
    requests, failures, p99 = stats["requests"] or 0.0, stats["failures"] or 0.0, stats["p99_ms"]
    error_rate = failures / requests if requests else 1.0
    reasons = []
    if not requests:
        reasons.append(f"no request completed against {args.host}")
    if error_rate > 0:
        reasons.append(f"error rate {error_rate:.4f} > 0 ({failures:.0f} failed)")
    if p99 is not None and p99 > settings.max_p99_ms:
        reasons.append(f"p99 {p99} ms > serve.loadtest.max_p99_ms {settings.max_p99_ms}")
    return {
        "host": args.host,
        "users": settings.users,
        "spawn_rate": settings.spawn_rate,
        "user_rps": settings.user_rps,
        "run_time_s": run_time,
        **stats,
        "error_rate": round(error_rate, 6),
        "max_p99_ms": settings.max_p99_ms,
        "passed": not reasons,
        "reasons": reasons,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelops.bench.serve", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("bench", "loadtest"):
        p = sub.add_parser(name)
        p.add_argument("--out", type=Path, required=True)
        p.add_argument("--params", type=Path, default=Path("params.yaml"))
        p.add_argument("--data", type=Path, default=Path("data/split/test.parquet"))
    b = sub.choices["bench"]
    b.add_argument("--model", type=Path, default=Path("models/model"))
    b.add_argument("--workers", type=int, default=2)
    b.add_argument("--threads", type=int, default=2, help="wrk threads")
    b.add_argument("--seconds", type=int, default=10)
    b.add_argument("--warmup", type=int, default=2)
    b.add_argument("--repeat", type=int, default=3, help="rounds; the median one is reported")
    b.add_argument("--rows", type=int, default=200, help="distinct request bodies")
    b.add_argument("--concurrency", type=int, nargs="+", default=[10, 100])
    lt = sub.choices["loadtest"]
    lt.add_argument("--host", required=True, help="base URL of the running service")
    lt.add_argument("--run-time-s", type=int, help="override serve.loadtest.run_time_s")
    args = parser.parse_args(argv)

    result = bench(args) if args.command == "bench" else loadtest(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    if args.command == "bench":
        print(table(result))
        print(json.dumps(result["goals"], indent=2))
        return 0
    print(json.dumps(result, indent=2))
    if not result["passed"]:
        print(f"load test failed: {'; '.join(result['reasons'])}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
