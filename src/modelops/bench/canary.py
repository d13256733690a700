"""The canary on the shipped defaults: how fast a bad release is stopped, and a good one promoted.

    python -m modelops.bench.canary --out bench/results/canary.json      (make bench-canary)

Everything is real: a SQLite MLflow registry in a work folder, the champion trained on the
repository's data, challengers that are good or bad in exactly one way
(`modelops.bench.challengers`), and the local rehearsal (`modelops deploy canary --target
local`: two model services, nginx, Prometheus, load through nginx at the CLI's default rate)
run with params.yaml as shipped. Cases:

| case | challenger | expected |
|---|---|---|
| good (x `--repeats`) | a fresh training run | promoted, never rolled back |
| errors | 5xx on ~11 % of rows | rejected in shadow, or rolled back |
| latency | 120 ms a request | rejected in shadow, or rolled back |
| score_shift | scores far higher than the champion's | rejected in shadow, or rolled back |
| prometheus_down | good, but Prometheus is stopped after the first analysis | stopped |
| shadow_disagrees | flips decisions for renters (needs `canary.shadow.enabled`) | rejected |

`--no-shadow` switches the shadow phase off, so the bad cases reach the canary steps and the
numbers measure the steps' check cadence alone.

`seconds_to_decision` counts from the first request the candidate receives (the load
generator's first request that nginx sent to it, or its prediction log's first entry, for
mirrored traffic) to the decision: traffic back on stable (rolled back), the promoted split
applied (promoted), or the rejection (rejected before any user traffic moved).
`requests_to_canary` is the user requests the candidate answered. The JSON is rewritten after
every case, with one timeline plot per case next to it (`canary-<case>.png`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import signal
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from modelops.config import Params, load_params

log = logging.getLogger("modelops.bench.canary")
GOAL_SECONDS = 60.0
BAD = ("errors", "latency", "score_shift", "prometheus_down", "shadow_disagrees")


@dataclass(frozen=True)
class Case:
    """One rehearsal: which challenger, and what else goes wrong."""

    name: str
    variant: str  # a registered role: good, failing, slow, shifted, flipped
    expected: tuple[str, ...]  # any of promoted, rolled_back, rejected
    service_env: tuple[tuple[str, str], ...] = ()
    stop_prometheus: bool = False


STOPPED = ("rolled_back", "rejected")  # a bad case is stopped in the canary steps or in shadow
CASES = {
    "good": Case("good", "good", ("promoted",)),
    # The failing step keeps the challenger off the fast path; both tracks then run the
    # sklearn predictor, so latency compares like with like and only errors differ.
    "errors": Case("errors", "failing", STOPPED, (("MODELOPS_FAST_PATH", "false"),)),
    "latency": Case("latency", "slow", STOPPED),
    "score_shift": Case("score_shift", "shifted", STOPPED),
    "prometheus_down": Case("prometheus_down", "good", STOPPED, stop_prometheus=True),
    "shadow_disagrees": Case("shadow_disagrees", "flipped", ("rejected",)),
}


def build_registry(work: Path, params: Params, repo: Path) -> dict[str, str]:
    """Train the champion and a good challenger, build the bad ones, register all; by role."""
    import mlflow

    from modelops.bench import challengers
    from modelops.pipeline.data import read_raw, split
    from modelops.pipeline.train import train_and_log
    from modelops.registry.client import RegistryClient
    from modelops.registry.tracking import TrackingSettings

    settings = TrackingSettings(
        tracking_uri=f"sqlite:///{work / 'mlflow.db'}", artifact_root=str(work / "mlartifacts")
    )
    train, test = split(read_raw(repo / params.data.path), params.data, params.split)
    train_path = work / "train.parquet"
    train.to_parquet(train_path, index=False)
    test.to_parquet(work / "test.parquet", index=False)
    registry = RegistryClient(settings.tracking_uri)
    name = params.register_.model_name
    versions: dict[str, str] = {}
    for role in ("champion", "good"):
        log.info("training the %s", role)
        run = train_and_log(
            params, train_path, repo / params.data.path, work / role, work / f"{role}.json",
            settings,
        )  # fmt: skip
        versions[role] = registry.register(name, run.model_uri, run.run_id, {}, [])[0].version
    for role in challengers.VARIANTS:
        log.info("building the %s challenger", role)
        uri = challengers.build(role, work / "champion", params, train_path, "bench-canary")
        run_id = mlflow.get_logged_model(uri.rsplit("/", 1)[-1]).source_run_id
        versions[role] = registry.register(name, uri, str(run_id), {}, [])[0].version
    return versions


def _stop_prometheus_after_first_analysis(run_dir: Path, done: threading.Event) -> None:
    """Wait for the first analysis in the state file, then stop the rehearsal's Prometheus."""
    from modelops.deploy.controller import STATE_FILE
    from modelops.deploy.local.env import LocalEnv
    from modelops.deploy.state import StateError, load_state

    while not done.wait(0.2):
        try:
            if not load_state(run_dir / STATE_FILE).history:
                continue
            pid = LocalEnv.load(run_dir).manifest.prometheus_pid
        except (StateError, OSError, ValueError):
            continue
        log.info("stopping Prometheus (pid %d) after the first analysis", pid)
        os.kill(pid, signal.SIGTERM)
        return


def first_prediction_at(path: Path) -> float | None:
    """Wall time of the earliest entry in a track's prediction log (any layout), or None."""
    from modelops.monitor.predlogs import read_records

    stamps = [
        datetime.fromisoformat(line["timestamp"]).timestamp()
        for line in read_records(path)
        if "timestamp" in line
    ]
    return min(stamps) if stamps else None


def measure(case: Case, result: Any, run_dir: Path) -> dict[str, Any]:
    """The case's row of canary.json from the rehearsal's state, load and logs."""
    from modelops.deploy.local.env import CANARY, LocalEnv, prediction_log_path
    from modelops.deploy.state import Phase, load_state

    outcome = result.outcome
    state = load_state(outcome.state_file)
    canary = LocalEnv.load(run_dir).manifest.services[CANARY]
    load = result.load
    sent = load.get("first_sent_by_upstream", {}).get(canary.address)
    logged = first_prediction_at(prediction_log_path(run_dir, CANARY))
    firsts = [t for t in (sent, logged) if t is not None]
    first = min(firsts) if firsts else None
    user_traffic = any(w > 0 for _, w in state.weights[:-1]) or state.phase == Phase.SUCCEEDED
    if state.phase == Phase.SUCCEEDED:
        decision = "promoted"
    else:
        decision = "rolled_back" if user_traffic else "rejected"
    decided = state.weights[-1][0] if state.weights and user_traffic else state.decided_at
    seconds = None if first is None or decided is None else round(decided - first, 1)
    return {
        "case": case.name,
        "decision": decision,
        "expected": list(case.expected),
        "stopped_in": "shadow"
        if any(h.phase == "shadow" for h in state.history[-1:])
        else "canary",
        "seconds_to_decision": seconds,
        "requests_to_canary": int(load.get("by_upstream", {}).get(canary.address, 0)),
        "release_seconds": round(outcome.duration_s, 1),
        "analyses": outcome.analyses,
        "reason": outcome.reason,
    }


def run_case(
    case: Case, params: Params, versions: dict[str, str], work: Path, out_dir: Path, n: int
) -> dict[str, Any]:
    from modelops.deploy.local.rehearsal import RehearsalConfig, rehearse
    from modelops.registry.client import CHALLENGER, CHAMPION, RegistryClient

    registry = RegistryClient(os.environ["MLFLOW_TRACKING_URI"])
    name = params.register_.model_name
    registry.set_alias(name, CHAMPION, versions["champion"])
    registry.set_alias(name, CHALLENGER, versions[case.variant])
    run_dir = work / "runs" / f"{case.name}-{n}"
    shutil.rmtree(run_dir, ignore_errors=True)
    config = RehearsalConfig(
        run_dir=run_dir,
        model_name=name,
        rows=work / "test.parquet",
        service_env={"MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true", **dict(case.service_env)},
    )
    done = threading.Event()
    if case.stop_prometheus:
        threading.Thread(
            target=_stop_prometheus_after_first_analysis, args=(run_dir, done), daemon=True
        ).start()
    started = time.monotonic()
    try:
        result = rehearse(params, config, registry)
    finally:
        done.set()
    row = measure(case, result, run_dir)
    row["wall_seconds"] = round(time.monotonic() - started, 1)
    timeline = run_dir / "timeline.png"
    if n == 1 and timeline.is_file():
        target = out_dir / f"canary-{case.name}.png"
        shutil.copyfile(timeline, target)
        row["timeline"] = target.name
    return row


def summarize(rows: list[dict[str, Any]], repeats: int) -> dict[str, Any]:
    good = [r for r in rows if r["case"] == "good"]
    bad = [r for r in rows if r["case"] in BAD]
    bad_seconds = [r["seconds_to_decision"] for r in bad if r["seconds_to_decision"] is not None]
    release = [r["release_seconds"] for r in good if r["decision"] == "promoted"]
    goals = {
        "every_bad_case_stopped": bool(bad) and all(r["decision"] in r["expected"] for r in bad),
        f"every_bad_case_within_{GOAL_SECONDS:g}s": bool(bad)
        and len(bad_seconds) == len(bad)
        and max(bad_seconds) <= GOAL_SECONDS,
        f"good_promoted_{repeats}_of_{repeats}": len(good) == repeats
        and all(r["decision"] == "promoted" for r in good),
    }
    return {
        "good_false_rollbacks": sum(r["decision"] != "promoted" for r in good),
        "good_release_seconds_median": statistics.median(release) if release else None,
        "good_release_seconds_max": max(release) if release else None,
        "bad_seconds_to_decision_max": max(bad_seconds) if bad_seconds else None,
        "goals": goals,
        "goals_met": all(goals.values()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/canary.json"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--work", type=Path, default=Path("build/bench-canary"))
    parser.add_argument("--repeats", type=int, default=5, help="runs of the good case")
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument(
        "--no-shadow",
        action="store_true",
        help="switch the shadow phase off: measures the canary steps alone",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    params = load_params(args.params)
    if args.no_shadow:
        shadow = params.canary.shadow.model_copy(update={"enabled": False})
        params.canary = params.canary.model_copy(update={"shadow": shadow})
    cases = [c for c in args.cases if c != "shadow_disagrees" or params.canary.shadow.enabled]
    work = args.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "true"
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    versions = build_registry(work, params, Path.cwd())
    repeats = {c: args.repeats if c == "good" else 1 for c in cases}
    plan = [(CASES[c], n) for c in cases for n in range(1, repeats[c] + 1)]
    rows: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    for i, (case, n) in enumerate(plan, start=1):
        print(f"[{i}/{len(plan)}] {case.name} #{n}: rehearsing ...", file=sys.stderr, flush=True)
        row = run_case(case, params, versions, work, args.out.parent, n)
        rows.append(row)
        print(
            f"[{i}/{len(plan)}] {case.name} #{n}: {row['decision']} "
            f"{row['seconds_to_decision']} s after its first request "
            f"({row['requests_to_canary']} user requests to it): {row['reason']}",
            file=sys.stderr,
            flush=True,
        )
        summary = summarize(rows, args.repeats)
        report = {
            "cases": rows,
            "params": params.canary.model_dump(mode="json"),
            "load": {"rps": 80.0, "batch": 10},
            "summary": summary,
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        }
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0 if summary["goals_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
