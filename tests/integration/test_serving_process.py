"""`python -m serving` as real processes: two workers share the load and one /metrics,
keep-alive requests are not held back by Nagle, graceful shutdown loses no log line, and a
dead worker or a taken port stops the launcher with an error."""

from __future__ import annotations

import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import multiprocess
from prometheus_client.parser import text_string_to_metric_families

from serving.model import read_card
from serving.process import ServiceProcess

pytestmark = pytest.mark.integration


def counter(url: str, name: str, **labels: str) -> float:
    """Sum of a counter's samples matching labels, read through a fresh connection."""
    with httpx.Client(limits=httpx.Limits(max_keepalive_connections=0)) as client:
        text = client.get(f"{url}/metrics").text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def workers_of(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text()]


@pytest.fixture(scope="module")
def example(trained_model: dict[str, Any]) -> dict[str, Any]:
    return dict(read_card(Path(trained_model["model_dir"])).example[0])


@pytest.fixture(scope="module")
def two_workers(
    trained_model: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServiceProcess, Path]]:
    tmp = tmp_path_factory.mktemp("two-workers")
    env = {
        "MODELOPS_METRICS_DIR": str(tmp / "metrics"),
        "MODELOPS_METRICS_FLUSH_SECONDS": "0.2",
        "MODELOPS_PREDICTION_LOG": str(tmp / "predictions"),
    }
    service = ServiceProcess(
        model=trained_model["model_dir"], workers=2, env=env, log=tmp / "service.log"
    )
    with service:
        yield service, tmp


def test_two_workers_share_connections_and_one_metrics_view(
    two_workers: tuple[ServiceProcess, Path], example: dict[str, Any]
) -> None:
    service, tmp = two_workers
    before = counter(service.url, "modelops_http_requests_total", route="/predict")
    with httpx.Client(limits=httpx.Limits(max_keepalive_connections=0)) as client:
        for _ in range(120):  # a new connection each time: the kernel picks a worker
            assert client.post(f"{service.url}/predict", json=example).status_code == 200
    time.sleep(0.6)  # each worker applies its tallied counts every 0.2 s
    per_pid: dict[str, float] = {}
    for file in (tmp / "metrics").glob("counter_*.db"):
        merged = multiprocess.MultiProcessCollector.merge([str(file)], accumulate=False)
        per_pid[file.name] = sum(
            s.value
            for m in merged
            for s in m.samples
            if s.name == "modelops_http_requests_total" and s.labels.get("route") == "/predict"
        )
    assert len(per_pid) == 2 and min(per_pid.values()) >= 10, per_pid  # both workers served
    views = {
        counter(service.url, "modelops_http_requests_total", route="/predict") for _ in range(8)
    }
    assert views == {before + 120}  # whichever worker answers /metrics sees every request
    rows = counter(service.url, "modelops_predictions_total")
    assert rows >= 120
    feature_rows = counter(service.url, "modelops_feature_bin_total", feature="Age")
    assert feature_rows == rows


def test_keep_alive_requests_are_not_delayed(
    two_workers: tuple[ServiceProcess, Path], example: dict[str, Any]
) -> None:
    """uvicorn's own multi-worker mode leaves Nagle on: every keep-alive request after the
    first waits ~40 ms for a delayed ACK. Here a hundred take a few ms each at most."""
    service, _ = two_workers
    connection = http.client.HTTPConnection("127.0.0.1", service.port)
    body, headers = json.dumps(example), {"Content-Type": "application/json"}
    times = []
    for _ in range(100):
        started = time.perf_counter()
        connection.request("POST", "/predict", body, headers)
        response = connection.getresponse()
        assert response.status == 200
        response.read()
        times.append(time.perf_counter() - started)
    connection.close()
    assert statistics.median(times) < 0.02, statistics.median(times)


def test_graceful_shutdown_writes_every_prediction(
    trained_model: dict[str, Any], tmp_path: Path, example: dict[str, Any]
) -> None:
    log = tmp_path / "predictions"
    env = {
        "MODELOPS_PREDICTION_LOG": str(log),
        "MODELOPS_PREDICTION_LOG_FLUSH_SECONDS": "300",  # only the shutdown drain writes
    }
    service = ServiceProcess(
        model=trained_model["model_dir"], workers=2, env=env, log=tmp_path / "service.log"
    ).start()
    answered: list[str] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(timeout=10) as http:
            while not stop.is_set():
                try:
                    response = http.post(f"{service.url}/predict", json=[example, example])
                except httpx.HTTPError:
                    return
                if response.status_code == 200:
                    answered.append(response.json()["request_id"])

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    assert service.stop() == 0  # SIGTERM while requests are in flight
    stop.set()
    for thread in threads:
        thread.join(10)
    (day,) = log.glob("date=*/predictions-*.jsonl")  # one file for both workers
    lines = [json.loads(x) for x in day.read_text().splitlines()]
    assert len(answered) > 20
    logged = [x["request_id"] for x in lines]
    assert sorted(set(logged)) == sorted(answered)  # every answered request, no other
    assert len(lines) == 2 * len(answered)


def test_sigint_is_graceful_too(trained_model: dict[str, Any], tmp_path: Path) -> None:
    service = ServiceProcess(model=trained_model["model_dir"], log=tmp_path / "s.log").start()
    assert service.process is not None
    service.process.send_signal(signal.SIGINT)
    assert service.process.wait(30) == 0
    assert "Application shutdown complete" in (tmp_path / "s.log").read_text()


def test_a_dead_worker_stops_the_launcher(trained_model: dict[str, Any], tmp_path: Path) -> None:
    service = ServiceProcess(
        model=trained_model["model_dir"], workers=2, log=tmp_path / "s.log"
    ).start()
    assert service.process is not None
    workers = workers_of(service.process.pid)
    assert len(workers) == 2
    os.kill(workers[0], signal.SIGKILL)
    assert service.process.wait(30) == 1
    assert "exited with code -9; stopping" in (tmp_path / "s.log").read_text()
    for pid in workers[1:]:
        assert (
            not Path(f"/proc/{pid}").exists()
            or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
        )


def test_a_taken_port_is_refused(
    two_workers: tuple[ServiceProcess, Path], trained_model: dict[str, Any]
) -> None:
    """SO_REUSEPORT would silently share the port with the running service."""
    service, _ = two_workers
    done = subprocess.run(
        [sys.executable, "-m", "serving", "--model", str(trained_model["model_dir"]),
         "--port", str(service.port)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert f"cannot listen on 127.0.0.1:{service.port}" in done.stderr


def test_a_bad_model_path_fails_fast(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "serving", "--model", str(tmp_path / "nothing")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert "not an MLflow model folder" in done.stderr


def test_ready_waits_for_every_worker(tmp_path: Path) -> None:
    """A worker with its model loaded does not call the service ready while its peer loads:
    /ready counts the readiness markers of the live workers the launcher started."""
    from serving.readiness import WorkerReadiness

    readiness = WorkerReadiness(tmp_path, workers=2)
    assert not readiness.all_ready()
    readiness.mark_ready()  # this process: one live worker ready
    assert not readiness.all_ready()
    (tmp_path / "ready-999999999").touch()  # a worker that is gone does not count
    assert not readiness.all_ready()
    peer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / f"ready-{peer.pid}").touch()
        assert readiness.all_ready()
    finally:
        peer.kill()
        peer.wait()
    assert WorkerReadiness(None, workers=2).all_ready()  # one process, no shared folder
