"""Prometheus metrics of the service: the contract that canary analysis and monitoring query.

Names and labels are documented in serving/README.md. With several worker processes the
launcher sets PROMETHEUS_MULTIPROC_DIR, and /metrics merges every worker's values.

In that mode every increment is a locked write to a memory-mapped file (about 1 us), and a
scored row touches one counter per feature. So counters are tallied in process and applied
by `flush()`: every MODELOPS_METRICS_FLUSH_SECONDS (the app runs it), before this worker
renders /metrics, and at shutdown. Other workers' counts thus show up within one interval;
histograms are observed directly.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from modelops.registry.reference import MISSING, OTHER, bin_labels, numeric_bin_index
from serving.model import ModelCard

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5)
SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))
SCORE_FEATURE = "__score__"
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
UNMATCHED = "unmatched"
SMALL_BATCH = 16  # below this, bins are found per value; above, with numpy


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class ServiceMetrics:
    """All metric families, in a registry of their own (several apps can share a process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "modelops_http_requests",
            "HTTP requests by route template, method and status code",
            ["route", "method", "status"],
            registry=r,
        )
        self.duration = Histogram(
            "modelops_http_request_duration_seconds",
            "Time from request start to the last response byte, by route template",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.score = Histogram(
            "modelops_prediction_score",
            "Positive-class score of each scored row",
            buckets=SCORE_BUCKETS,
            registry=r,
        )
        self.predictions = Counter(
            "modelops_predictions", "Scored rows by decision", ["decision"], registry=r
        )
        self.feature_bins = Counter(
            "modelops_feature_bin",
            "Scored rows per feature and reference bin (feature __score__ bins the score)",
            ["feature", "bin"],
            registry=r,
        )
        self.reference = Gauge(
            "modelops_feature_reference_proportion",
            "Share of training rows in each reference bin",
            ["feature", "bin"],
            multiprocess_mode="max",
            registry=r,
        )
        self.info = Gauge(
            "modelops_model_info",
            "The model this service runs (value is always 1)",
            ["model_name", "model_version", "run_id", "git_commit", "image_tag"],
            multiprocess_mode="max",
            registry=r,
        )
        self.ready = Gauge(
            "modelops_model_ready",
            "1 when every live worker has loaded the model and passed its warm-up",
            multiprocess_mode="livemin",
            registry=r,
        )
        self.log_dropped = Counter(
            "modelops_prediction_log_dropped",
            "Prediction log lines dropped because the writer fell behind or failed",
            registry=r,
        )
        self._request_children: dict[tuple[str, str, int], Any] = {}
        self._pending_requests: dict[tuple[str, str, int], int] = {}
        self._duration_children: dict[str, Any] = {}
        self.decisions = PendingCounts(
            [self.predictions.labels("positive"), self.predictions.labels("negative")]
        )
        self.pending: list[PendingCounts] = [self.decisions]
        self.ready.set(0)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        self._pending_requests[key] = self._pending_requests.get(key, 0) + 1
        duration = self._duration_children.get(route)
        if duration is None:
            duration = self._duration_children[route] = self.duration.labels(route)
        duration.observe(seconds)

    def observe_scores(self, scores: list[float], positives: int) -> None:
        for value in scores:
            self.score.observe(value)
        self.decisions.counts[0] += positives
        self.decisions.counts[1] += len(scores) - positives

    def flush(self) -> None:
        """Apply the counts tallied since the last flush to the Prometheus counters."""
        pending, self._pending_requests = self._pending_requests, {}
        for key, n in pending.items():
            child = self._request_children.get(key)
            if child is None:
                route, method, status = key
                method_label = method if method in METHODS else "OTHER"
                child = self.requests.labels(route, method_label, str(status))
                self._request_children[key] = child
            child.inc(n)
        for counts in self.pending:
            counts.flush()

    def render(self) -> tuple[bytes, str]:
        """The exposition text: this process's registry, or all workers' files merged."""
        self.flush()
        if multiprocess_dir():
            registry = CollectorRegistry()
            prometheus_multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class PendingCounts:
    """Increments of a fixed set of counter children, kept in process until flush()."""

    def __init__(self, children: list[Any]) -> None:
        self.children = children
        self.counts = [0] * len(children)

    def flush(self) -> None:
        counts, self.counts = self.counts, [0] * len(self.children)
        for child, n in zip(self.children, counts, strict=True):
            if n:
                child.inc(n)


class _NumericBins(PendingCounts):
    def __init__(self, children: list[Any], edges: list[float]) -> None:
        super().__init__(children)
        self.edges = edges

    def count(self, values: list[float]) -> None:
        counts = self.counts
        if len(values) <= SMALL_BATCH:
            missing = len(self.edges) + 1
            for v in values:
                counts[missing if v != v else bisect_left(self.edges, v)] += 1
            return
        index = numeric_bin_index(np.asarray(values, dtype=np.float64), self.edges)
        tally = np.bincount(index, minlength=len(counts))
        for i in np.flatnonzero(tally).tolist():
            counts[i] += int(tally[i])


class _CategoricalBins(PendingCounts):
    def __init__(self, labels: list[str], children: list[Any]) -> None:
        super().__init__(children)
        self.index = {label: i for i, label in enumerate(labels)}
        self.missing, self.other = self.index[MISSING], self.index[OTHER]

    def count(self, values: list[str | None]) -> None:
        counts, index, other = self.counts, self.index, self.other
        for v in values:
            counts[self.missing if v is None else index.get(v, other)] += 1


class DriftBins:
    """Counts every scored row into the reference bins saved with the model, per feature and
    for the score, and publishes the training share of each bin next to it."""

    def __init__(self, card: ModelCard, metrics: ServiceMetrics) -> None:
        self.numeric: list[_NumericBins] = []
        self.categorical: list[_CategoricalBins] = []
        specs = [(f.name, card.reference["features"][f.name]) for f in card.features]
        for name, ref in [*specs, (SCORE_FEATURE, card.reference["score"])]:
            if ref["type"] == "numeric":
                labels = bin_labels(list(ref["edges"]))
            else:
                labels = [k for k in ref["proportions"] if k not in (MISSING, OTHER)]
                labels += [MISSING, OTHER]
            for label in labels:
                share = float(ref["proportions"].get(label, 0.0))
                metrics.reference.labels(name, label).set(share)
            children = [metrics.feature_bins.labels(name, label) for label in labels]
            if ref["type"] == "numeric":
                bins = _NumericBins(children, [float(e) for e in ref["edges"]])
                if name == SCORE_FEATURE:
                    self.score = bins
                else:
                    self.numeric.append(bins)
                metrics.pending.append(bins)
            else:
                cbins = _CategoricalBins(labels, children)
                self.categorical.append(cbins)
                metrics.pending.append(cbins)

    def count(self, numeric: np.ndarray, categorical: list[list[str | None]], scores: list) -> None:
        """numeric: rows x numeric features (NaN = missing); categorical: one list per feature."""
        for bins, column in zip(self.numeric, numeric.T.tolist(), strict=True):
            bins.count(column)
        for cbins, values in zip(self.categorical, categorical, strict=True):
            cbins.count(values)
        self.score.count(scores)


class MetricsMiddleware:
    """Pure ASGI middleware: request count and latency by route template and status."""

    def __init__(self, app: Any, metrics: ServiceMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.observe_request(
                route_template(scope), scope["method"], status, time.perf_counter() - started
            )


def route_template(scope: dict[str, Any]) -> str:
    """The matched route's path template; FastAPI records the route object only for API
    routes, so a matched static route (/openapi.json, /docs) is labelled by its own path.
    Anything unmatched shares one label: no series per random URL."""
    template = getattr(scope.get("route"), "path", None)
    if template is None and "endpoint" in scope and not scope.get("path_params"):
        template = scope["path"]
    return str(template or UNMATCHED)
