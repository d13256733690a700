"""PrometheusMetricProvider and the analysis PromQL against a real Prometheus process.

A real `prometheus` (Debian package) scrapes itself and two small in-test exporters every
second. The exporters publish the service's metric names and labels (serving/README.md) with
known traffic: stable answers everything fast with uniform scores; canary answers 10 % with
a 500, slowly, with scores shifted up. They stand in for `python -m serving` only to make the
numbers exact and the test short; the real services are scraped in tests/e2e/test_canary_*.py
and tests/integration/test_monitoring_prometheus.py.
"""

from __future__ import annotations

import http.server
import math
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from modelops.config import Params
from modelops.deploy.analysis import CHECKS, analyse
from modelops.deploy.metrics import MetricProvider, PrometheusMetricProvider
from modelops.errors import MetricsError
from modelops.monitor.drift import psi

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
LATENCY = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5)
SCORES = tuple(round(0.05 * i, 2) for i in range(1, 21))
STABLE_SCORES = [0.025 + 0.05 * i for i in range(20)]  # one per bucket: uniform
CANARY_SCORES = [0.525 + 0.05 * i for i in range(9)]  # buckets 11..19 only
TICK_S = 0.1
WINDOW_S = 8


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Exporter:
    """The service's metric families in a registry of their own, served on a free port."""

    def __init__(self, requests: int, errors: int, seconds: float, scores: list[float]):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "modelops_http_requests",
            "requests",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "modelops_http_request_duration_seconds",
            "latency",
            ["route"],
            buckets=LATENCY,
            registry=self.registry,
        )
        self.score = Histogram(
            "modelops_prediction_score", "scores", buckets=SCORES, registry=self.registry
        )
        Gauge("modelops_model_ready", "ready", registry=self.registry).set(1)
        self.per_tick = (requests, errors, seconds, scores)
        self.port = free_port()
        self.server, _ = start_http_server(self.port, "127.0.0.1", registry=self.registry)

    def tick(self) -> None:
        requests, errors, seconds, scores = self.per_tick
        self.requests.labels("/health", "GET", "200").inc(5)  # not a scoring route
        if not requests:
            return  # like the service: no /predict series before the first prediction
        self.requests.labels("/predict", "POST", "200").inc(requests - errors)
        if errors:
            self.requests.labels("/predict", "POST", "500").inc(errors)
        for _ in range(requests):
            self.latency.labels("/predict").observe(seconds)
        for value in scores:
            self.score.observe(value)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Prometheus scraping itself and the two exporters (track/env labels per target)."""
    tmp = tmp_path_factory.mktemp("prometheus")
    exporters = {
        ("stable", "test"): Exporter(20, 0, 0.003, STABLE_SCORES),
        ("canary", "test"): Exporter(10, 1, 0.3, CANARY_SCORES),
        ("stable", "idle"): Exporter(20, 0, 0.003, STABLE_SCORES),
        ("canary", "idle"): Exporter(0, 0, 0.003, []),  # up and ready, no predictions yet
    }
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            for exporter in exporters.values():
                exporter.tick()
            time.sleep(TICK_S)

    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]},
            {
                "job_name": "modelops",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{e.port}"], "labels": {"track": t, "env": env}}
                    for (t, env), e in exporters.items()
                ],
            },
        ],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    output = (tmp / "prometheus.out").open("w")
    process = subprocess.Popen(
        [PROMETHEUS, f"--config.file={tmp / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=output, stderr=subprocess.STDOUT,
    )  # fmt: skip
    thread = threading.Thread(target=traffic, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, f"prometheus exited; see {output.name}"
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "prometheus did not become ready in 30 s"
            time.sleep(0.2)
        yield {"url": url, "process": process}
    finally:
        stop.set()
        thread.join(timeout=5)
        process.terminate()
        process.wait(timeout=20)
        output.close()
        for exporter in exporters.values():
            exporter.server.shutdown()
            exporter.server.server_close()


@pytest.fixture(scope="module")
def provider(prometheus: dict[str, Any]) -> Iterator[PrometheusMetricProvider]:
    with PrometheusMetricProvider(prometheus["url"], timeout_s=5) as client:
        yield client


def wait_for_value(provider: MetricProvider, promql: str, timeout: float = 30) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = provider.query(promql)
        if value is not None:
            return value
        time.sleep(0.5)
    raise AssertionError(f"no value for {promql} within {timeout}s")


def test_provider_implements_the_protocol(provider: PrometheusMetricProvider) -> None:
    assert isinstance(provider, MetricProvider)


def test_instant_values_scalars_and_no_data(provider: PrometheusMetricProvider) -> None:
    assert wait_for_value(provider, 'up{job="prometheus"}') == 1.0
    assert provider.query("scalar(vector(3))") == 3.0
    assert provider.query("2.5") == 2.5
    assert provider.query('up{job="no-such-job"}') is None  # empty result: no data
    assert provider.query("vector(0) / vector(0)") is None  # NaN: no data
    assert provider.query("vector(1) / vector(0)") == math.inf


def test_vectors_keep_labels(provider: PrometheusMetricProvider) -> None:
    wait_for_value(provider, 'count(up{job="modelops", env="test"} == 1) == 2')
    samples = provider.query_vector('up{job="modelops", env="test"}')
    assert sorted(s.labels["track"] for s in samples) == ["canary", "stable"]
    assert all(s.labels["env"] == "test" and s.value == 1.0 for s in samples)
    assert provider.query_vector('up{job="no-such-job"}') == []


def test_several_series_for_one_number_is_an_error(provider: PrometheusMetricProvider) -> None:
    wait_for_value(provider, 'count(up{job="modelops", env="test"} == 1) == 2')
    with pytest.raises(MetricsError, match=r"returned 2 series .* aggregate it with sum"):
        provider.query('up{job="modelops", env="test"}')


def test_refused_query_names_the_query_and_the_reason(
    provider: PrometheusMetricProvider,
) -> None:
    with pytest.raises(MetricsError) as raised:
        provider.query("sum(rate(up[1m])")
    message = str(raised.value)
    assert provider.base_url in message and "sum(rate(up[1m])" in message
    assert "bad_data" in message and "HTTP 400" in message


def test_range_result_is_refused(provider: PrometheusMetricProvider) -> None:
    with pytest.raises(MetricsError, match="gave a matrix result"):
        provider.query("up[1m]")


def test_unreachable_prometheus_is_a_metrics_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with (
        PrometheusMetricProvider(url, timeout_s=2) as client,
        pytest.raises(MetricsError) as raised,
    ):
        client.query("up")
    message = str(raised.value)
    assert f"{url}/api/v1/query is unreachable" in message
    assert "canary.prometheus_url" in message


def test_stopped_prometheus_fails_every_check(params: Params, tmp_path: Path) -> None:
    """The analysis on a Prometheus that is gone: every check fails, none passes silently."""
    url = f"http://127.0.0.1:{free_port()}"
    with PrometheusMetricProvider(url, timeout_s=2) as client:
        analysis = analyse(client, params, "test", WINDOW_S)
    assert {c.verdict for c in analysis.checks} == {"failed"}
    assert all("unreachable" in c.message for c in analysis.checks)


def test_a_server_that_is_not_prometheus(tmp_path: Path) -> None:
    class Html(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html>login</html>"
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Html)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with PrometheusMetricProvider(url) as client, pytest.raises(MetricsError) as raised:
            client.query("up")
        assert "not the Prometheus API's JSON" in str(raised.value)
        assert "<html>login" in str(raised.value)
    finally:
        server.shutdown()
        server.server_close()


def test_a_silent_server_times_out() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()  # accepts connections, never answers
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with (
            PrometheusMetricProvider(url, timeout_s=0.5) as client,
            pytest.raises(MetricsError, match=r"did not answer within 0.5s"),
        ):
            client.query("up")


def test_bad_url_is_refused_up_front() -> None:
    with pytest.raises(MetricsError, match="must start with http"):
        PrometheusMetricProvider("127.0.0.1:9090")


def test_analysis_queries_on_real_prometheus(
    provider: PrometheusMetricProvider, params: Params
) -> None:
    """Every check's PromQL runs on Prometheus and gives the numbers the exporters produced."""
    # Wait until every canary series has a full window of scrapes (plus margin).
    scrapes = (
        f'min(count_over_time(modelops_http_requests_total{{track="canary"}}[{WINDOW_S + 4}s]))'
    )
    deadline = time.monotonic() + 40
    while (provider.query(scrapes) or 0) < WINDOW_S + 2:
        assert time.monotonic() < deadline, "not enough scrapes within 40 s"
        time.sleep(0.5)

    analysis = analyse(provider, params, "test", WINDOW_S)
    checks = {c.name: c for c in analysis.checks}
    assert set(checks) == set(CHECKS)

    # Requests: 10 and 20 per tick on /predict (the /health calls are not counted).
    expected = {"canary": 10 / TICK_S * WINDOW_S, "stable": 20 / TICK_S * WINDOW_S}
    assert checks["requests"].verdict == "passed"
    assert checks["requests"].canary == pytest.approx(expected["canary"], rel=0.3)
    assert checks["requests"].stable == pytest.approx(expected["stable"], rel=0.3)

    # Errors: 1 in 10 on canary, no 5xx series at all on stable.
    assert checks["error_rate"].canary == pytest.approx(0.1, rel=0.1)
    assert checks["error_rate"].stable == 0.0
    assert checks["error_rate"].verdict == "failed"

    # Latency: canary's 300 ms lands in the (0.25, 0.5] bucket, stable's 3 ms in (2.5, 5] ms.
    assert 250 < checks["p99_latency"].canary <= 500
    assert 2.5 < checks["p99_latency"].stable <= 5
    assert checks["p99_latency"].verdict == "failed"

    # Scores: PSI from Prometheus' buckets equals drift.psi on the shares the exporters made.
    canary_share = np.zeros(20)
    canary_share[10:19] = 1 / 9
    expected_psi = psi(canary_share, np.full(20, 1 / 20), params.drift.epsilon)
    assert checks["score_psi"].canary == pytest.approx(expected_psi, rel=0.02)
    assert checks["score_psi"].verdict == "failed"


def test_stable_offset_reads_an_earlier_window(
    provider: PrometheusMetricProvider, params: Params
) -> None:
    # Prometheus accepts the offset form and finds the earlier window's samples.
    wait_for_value(
        provider, 'min(count_over_time(modelops_http_requests_total{env="test"}[3s] offset 2s)) > 2'
    )
    analysis = analyse(provider, params, "test", 3, stable_offset_s=2)
    assert analysis.stable_offset_s == 2
    stable = analysis.check("requests").stable
    assert stable is not None and stable > 0


def test_an_environment_without_series_fails_for_missing_data(
    provider: PrometheusMetricProvider, params: Params
) -> None:
    """Valid queries, no series for env "production": failed (never promote on no data)."""
    analysis = analyse(provider, params, "production", WINDOW_S)
    assert analysis.check("requests").verdict == "failed"
    assert "no metrics for canary and stable" in analysis.check("requests").message
    assert analysis.verdict == "failed"
    assert not any("query failed" in c.message for c in analysis.checks)


def test_a_ready_track_without_predictions_is_inconclusive_not_failed(
    provider: PrometheusMetricProvider, params: Params
) -> None:
    """No /predict series yet on a scraped, ready canary: 0 requests (too few), not no data."""
    wait_for_value(provider, 'count(up{env="idle"} == 1) == 2')
    time.sleep(4)  # at least three scrapes of each target in the window
    analysis = analyse(provider, params, "idle", 4)
    requests = analysis.check("requests")
    assert requests.canary == 0.0 and requests.stable is not None and requests.stable > 0
    assert requests.verdict == "inconclusive"
    assert analysis.verdict == "inconclusive"
