"""Prometheus metrics of the service: the contract that canary analysis and monitoring query.

Names and labels are documented in serving/README.md. With several worker processes the
launcher sets PROMETHEUS_MULTIPROC_DIR, and /metrics merges every worker's values.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left
from collections import Counter as Tally
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from modelops.reference import MISSING, OTHER, bin_labels, numeric_bin_index
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
        self._duration_children: dict[str, Any] = {}
        self._positive = self.predictions.labels("positive")
        self._negative = self.predictions.labels("negative")
        self.ready.set(0)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        child = self._request_children.get(key)
        if child is None:
            method_label = method if method in METHODS else "OTHER"
            child = self._request_children[key] = self.requests.labels(
                route, method_label, str(status)
            )
        child.inc()
        duration = self._duration_children.get(route)
        if duration is None:
            duration = self._duration_children[route] = self.duration.labels(route)
        duration.observe(seconds)

    def observe_scores(self, scores: list[float], positives: int) -> None:
        for value in scores:
            self.score.observe(value)
        if positives:
            self._positive.inc(positives)
        if positives < len(scores):
            self._negative.inc(len(scores) - positives)

    def render(self) -> tuple[bytes, str]:
        """The exposition text: this process's registry, or all workers' files merged."""
        if multiprocess_dir():
            registry = CollectorRegistry()
            prometheus_multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _NumericBins:
    def __init__(self, children: list[Any], edges: list[float]) -> None:
        self.children, self.edges = children, edges

    def count(self, values: list[float]) -> None:
        if len(values) <= SMALL_BATCH:
            missing = len(self.edges) + 1
            for v in values:
                self.children[missing if v != v else bisect_left(self.edges, v)].inc()
            return
        index = numeric_bin_index(np.asarray(values, dtype=np.float64), self.edges)
        counts = np.bincount(index, minlength=len(self.children))
        for i in np.flatnonzero(counts).tolist():
            self.children[i].inc(int(counts[i]))


class _CategoricalBins:
    def __init__(self, children: dict[str, Any]) -> None:
        self.children = children
        self.missing, self.other = children[MISSING], children[OTHER]

    def count(self, values: list[str | None]) -> None:
        if len(values) <= SMALL_BATCH:
            for v in values:
                self.children.get(v, self.other).inc() if v is not None else self.missing.inc()
            return
        for child, n in Tally(
            self.missing if v is None else self.children.get(v, self.other) for v in values
        ).items():
            child.inc(n)


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
            else:
                self.categorical.append(_CategoricalBins(dict(zip(labels, children, strict=True))))

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
