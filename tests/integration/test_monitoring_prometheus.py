"""Real Prometheus scraping two real model services under load: the rules see the drift.

Two `python -m serving` processes run the trained model as track "stable" and track "canary";
a real Prometheus scrapes both every second and evaluates the repository's rules. Stable gets
held-out credit rows as they are; canary gets the same rows with income and amount up 50% and
half the home owners turned renters. The recorded PSI must flag exactly the shifted features
on canary and nothing on stable, the drift alert must fire for canary only, every Grafana
dashboard query must return data, and `modelops drift` on the services' own prediction logs
must reach the same verdict as the rules.

The rules are loaded as a short-window variant: [5m] ranges become [15s] and `for:` durations
5s, so the test takes seconds instead of 10 minutes. The expressions are otherwise the
committed ones (the recorded series keep their :5m names).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

from modelops.bench.drift import inject_drift
from modelops.config import Params

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "infra" / "local" / "prometheus"
DASHBOARD = ROOT / "infra" / "local" / "grafana" / "dashboards" / "modelops.json"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
WINDOW = "15s"
SHIFTED = {"Income", "Amount", "Home"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except httpx.HTTPError as error:
            last = error
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def short_window_rules(dest: Path) -> list[Path]:
    out = []
    for path in sorted((PROM_DIR / "rules").glob("*.yml")):
        text = re.sub(r"\[5m\]", f"[{WINDOW}]", path.read_text())
        text = re.sub(r"for: \d+m", "for: 5s", text)
        out.append(dest / path.name)
        out[-1].write_text(text)
    return out


class Service:
    """One `python -m serving` process on a free port, logging predictions to a file."""

    def __init__(self, model_dir: Path, track: str, tmp: Path) -> None:
        self.port = free_port()
        self.track = track
        self.log = tmp / f"{track}-predictions"  # a folder of day partitions
        env = {
            **os.environ,
            "MODELOPS_PREDICTION_LOG": str(self.log),
            "MODELOPS_ENVIRONMENT": "test",
            "OMP_NUM_THREADS": "1",
        }
        self.output = (tmp / f"{track}.out").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "serving", "--model", str(model_dir), "--port",
             str(self.port), "--workers", "1"],
            cwd=ROOT, env=env, stdout=self.output, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        assert self.process.poll() is None, f"{self.track} service exited"
        return httpx.get(f"{self.url}/ready", timeout=2).status_code == 200

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.output.close()


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, trained_model: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    """Stable and canary services and a Prometheus scraping them with the rules loaded."""
    tmp = tmp_path_factory.mktemp("monitoring")
    services = {t: Service(trained_model["model_dir"], t, tmp) for t in ("stable", "canary")}
    rules = short_window_rules(tmp)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(r) for r in rules],
        "scrape_configs": [
            {
                "job_name": "modelops",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{s.port}"], "labels": {"track": t, "env": "test"}}
                    for t, s in services.items()
                ],
            }
        ],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    prometheus = subprocess.Popen(
        [PROMETHEUS, f"--config.file={tmp / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=(tmp / "prometheus.out").open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    api = f"http://127.0.0.1:{port}"
    try:
        for service in services.values():
            wait_until(service.ready, 60, f"{service.track} /ready")
        wait_until(lambda: httpx.get(f"{api}/-/ready", timeout=2).status_code == 200, 30, "prom")
        yield {"services": services, "api": api, "tmp": tmp}
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=20)
        for service in services.values():
            service.stop()


def records(frame: pd.DataFrame, params: Params) -> list[dict[str, Any]]:
    """Rows as /predict takes them: floats for numeric features, null for missing."""
    out = frame[params.data.features].astype(object)
    return out.where(frame[params.data.features].notna(), None).to_dict("records")


def send_load(url: str, rows: list[dict[str, Any]], stop: threading.Event, batch: int) -> int:
    """POST batches of rows (cycling through them) until `stop` is set (60 s at most)."""
    sent, position = 0, 0
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=url, timeout=10) as client:
        while not stop.is_set() and time.monotonic() < deadline:
            chunk = [rows[(position + i) % len(rows)] for i in range(batch)]
            position += batch
            response = client.post("/predict", json=chunk)
            assert response.status_code == 200, response.text
            sent += batch
    return sent


def query(api: str, expr: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{api}/api/v1/query", params={"query": expr}, timeout=10)
    body = response.json()
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def psi_by_track(api: str) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {"stable": {}, "canary": {}}
    for sample in query(api, "modelops:feature_psi:5m"):
        out[sample["metric"]["track"]][sample["metric"]["feature"]] = float(sample["value"][1])
    for sample in query(api, "modelops:score_psi:5m"):
        out[sample["metric"]["track"]]["__score__"] = float(sample["value"][1])
    return out


def settled(api: str, params: Params, started: float) -> dict[str, dict[str, float]] | None:
    """PSI of every feature on both tracks, once a full window of enough rows is in."""
    psi = psi_by_track(api)
    rows = {
        s["metric"]["track"]: float(s["value"][1])
        for s in query(api, "modelops:score_rows:increase5m")
    }
    full = all(len(psi[t]) == len(params.data.features) + 1 for t in psi)
    enough = len(rows) == 2 and min(rows.values()) >= params.drift.min_rows
    return psi if full and enough and time.monotonic() > started + 16 else None


def test_rules_flag_injected_drift_on_canary_only(
    stack: dict[str, Any],
    params: Params,
    split_frames: tuple[pd.DataFrame, pd.DataFrame],
    repo_root: Path,
    trained_model: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api, services = stack["api"], stack["services"]
    test_rows = split_frames[1]
    rng = np.random.default_rng(0)
    order = rng.permutation(len(test_rows))
    loads = {
        "stable": records(test_rows.iloc[order], params),
        "canary": records(inject_drift(test_rows, seed=6).iloc[order], params),
    }
    counts: dict[str, int] = {}
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=lambda t=t: counts.__setitem__(
                t, send_load(services[t].url, loads[t], stop, batch=25)
            )
        )
        for t in loads
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        psi = wait_until(
            lambda: settled(api, params, started), 30, "PSI of both tracks over a full window"
        )
        firing = wait_until(
            lambda: {
                (a["labels"]["track"], a["labels"].get("feature"))
                for a in httpx.get(f"{api}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
                if a["labels"]["alertname"] == "ModelopsFeatureDrift" and a["state"] == "firing"
            },
            20,
            "ModelopsFeatureDrift firing",
        )
        dashboard_results = {expr: query(api, expr) for expr in dashboard_queries()}
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    print(f"rows sent: {counts}")
    print(
        "Prometheus PSI, canary: "
        + ", ".join(f"{k} {v:.3f}" for k, v in sorted(psi["canary"].items()))
    )
    print("Prometheus PSI, stable: max " + f"{max(psi['stable'].values()):.3f}")
    for feature in SHIFTED:
        assert psi["canary"][feature] > params.drift.psi_alert, (feature, psi["canary"])
    for feature, value in psi["canary"].items():
        if feature not in SHIFTED and feature != "__score__":
            assert value < params.drift.psi_warning, (feature, value)
    assert max(psi["stable"].values()) < params.drift.psi_warning, psi["stable"]
    assert firing <= {("canary", f) for f in SHIFTED}
    assert ("canary", "Income") in firing and ("canary", "Amount") in firing

    empty = [expr for expr, result in dashboard_results.items() if not result]
    assert not empty, f"dashboard queries without data: {empty}"

    # The same verdict from the batch report on the prediction logs the services wrote.
    time.sleep(1.5)  # the services flush their prediction logs every 0.5 s
    model_dir = str(trained_model["model_dir"])
    for track, expected_code in (("canary", 3), ("stable", 0)):
        out = stack["tmp"] / f"drift-{track}"
        code = run_cli(
            monkeypatch, repo_root, "drift", "--data", str(services[track].log),
            "--reference", model_dir, "--out-dir", str(out),
        )  # fmt: skip
        verdict = json.loads((out / "drift.json").read_text())
        assert code == expected_code, verdict["verdict"]
        assert verdict["rows"] >= counts[track] * 0.99
        if track == "canary":
            assert set(verdict["drifted"]) >= SHIFTED
            print("modelops drift on the canary log: " + ", ".join(
                f"{c['name']} {c['psi']:.3f}" for c in verdict["columns"] if c["status"] == "drift"
            ))  # fmt: skip


def dashboard_queries() -> list[str]:
    """Every dashboard query with Grafana's variables set as a viewer would see them."""
    board = json.loads(DASHBOARD.read_text())
    values = {"$__rate_interval": WINDOW, "$__range": "1m", "$track": ".*", "$feature": "Income"}
    out = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in values.items():
                expr = expr.replace(variable, value)
            out.append(expr)
    return out


def run_cli(monkeypatch: pytest.MonkeyPatch, repo_root: Path, *args: str) -> int:
    from modelops.cli import main

    monkeypatch.setattr(
        sys, "argv", ["modelops", *args, "--params", str(repo_root / "params.yaml")]
    )
    try:
        main()
    except SystemExit as done:
        return int(done.code or 0)
    return 0
