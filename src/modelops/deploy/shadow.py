"""Shadow analysis: the candidate against stable on the same mirrored requests.

In the shadow phase the router copies `canary.shadow.mirror_percent` of live requests to the
candidate and discards its answers; both services log every scored row with the request's id
(nginx or the gateway forwards the same X-Request-ID to both). The analysis joins the two
prediction logs on (request_id, row) for rows the candidate scored since the phase began and
judges (thresholds in `canary.shadow`):

| check | verdict |
|---|---|
| shadow_requests | joined requests; fewer than `min_requests`: inconclusive, nothing else judged |
| decision_agreement | share of rows where both decide the same, at least `min_agreement` |
| mean_score_diff | mean absolute score difference, at most `max_mean_score_diff` |
| max_score_diff | largest absolute score difference on one row, at most `max_score_diff` |
| shadow_score_psi | PSI, candidate vs stable scores (10 bins on [0, 1]), <= `max_score_psi` |
| shadow_error_rate | candidate 5xx share on its mirrored requests (Prometheus) |
| shadow_p99_latency | candidate p99 on its mirrored requests (Prometheus), <= `max_p99_ms` |

Error rate and latency come from the candidate's own metrics (its track serves only mirrored
requests in this phase): a request that failed has no prediction-log line to join.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from modelops.config import Params
from modelops.deploy.analysis import (
    Analysis,
    CheckResult,
    Verdict,
    errors_query,
    p99_query,
    requests_query,
)
from modelops.deploy.metrics import MetricProvider
from modelops.errors import DataError, MetricsError
from modelops.monitor.drift import psi
from modelops.monitor.predlogs import read_records

SHADOW_CHECKS = (
    "shadow_requests",
    "decision_agreement",
    "mean_score_diff",
    "max_score_diff",
    "shadow_score_psi",
    "shadow_error_rate",
    "shadow_p99_latency",
)
PSI_BINS = np.linspace(0.0, 1.0, 11)


class ShadowSource(Protocol):
    """Where the two tracks' prediction-log lines come from."""

    def rows(self, track: str) -> Iterable[dict[str, Any]]: ...


@dataclass(frozen=True)
class PredictionLogs:
    """Prediction logs on disk, one path (file or folder) per track."""

    paths: dict[str, Path]

    def rows(self, track: str) -> Iterable[dict[str, Any]]:
        return read_records(self.paths[track])


@dataclass(frozen=True)
class Joined:
    """Rows both tracks scored, aligned: scores and decisions per track."""

    requests: int
    stable_scores: np.ndarray
    canary_scores: np.ndarray
    agree: np.ndarray


def _since(line: dict[str, Any], since: float) -> bool:
    try:
        return datetime.fromisoformat(str(line["timestamp"])).timestamp() >= since
    except (KeyError, ValueError):
        return False


def join(source: ShadowSource, since: float) -> Joined:
    """Candidate rows logged since `since`, each with stable's answer to the same request row."""
    canary = {
        (str(line.get("request_id")), int(line.get("row", 0))): line
        for line in source.rows("canary")
        if _since(line, since) and "score" in line
    }
    pairs = []
    if canary:
        for line in source.rows("stable"):
            key = (str(line.get("request_id")), int(line.get("row", 0)))
            match = canary.get(key)
            if match is not None and "score" in line:
                pairs.append((line, match))
    stable_scores = np.array([float(s["score"]) for s, _ in pairs], dtype=float)
    canary_scores = np.array([float(c["score"]) for _, c in pairs], dtype=float)
    agree = np.array([s.get("decision") == c.get("decision") for s, c in pairs], dtype=bool)
    requests = len({s.get("request_id") for s, _ in pairs})
    return Joined(requests, stable_scores, canary_scores, agree)


def _check(
    name: str, value: float | None, threshold: float, ok: bool, what: str, query: str
) -> CheckResult:
    verdict: Verdict = "passed" if ok else "failed"
    shown = "no data" if value is None else f"{value:.4g}"
    return CheckResult(name, value, None, threshold, verdict, f"{what} {shown}", query)


def judge_joined(joined: Joined, params: Params) -> list[CheckResult]:
    """The checks on the joined rows (the first is the request count)."""
    sh = params.canary.shadow
    source = "prediction logs joined on request_id"
    n = joined.requests
    if n < sh.min_requests:
        note = f"too few mirrored requests joined ({n} < {sh.min_requests})"
        first = CheckResult("shadow_requests", n, None, sh.min_requests, "inconclusive", note)
        rest = [
            CheckResult(name, None, None, None, "inconclusive", "not judged (too few requests)")
            for name in SHADOW_CHECKS[1:5]
        ]
        return [first, *rest]
    agreement = float(joined.agree.mean())
    diff = np.abs(joined.canary_scores - joined.stable_scores)
    current = np.histogram(np.clip(joined.canary_scores, 0, 1), PSI_BINS)[0] / diff.size
    reference = np.histogram(np.clip(joined.stable_scores, 0, 1), PSI_BINS)[0] / diff.size
    value_psi = psi(current, reference, params.drift.epsilon)
    rows = f"on {diff.size} rows of {n} requests"
    return [
        CheckResult(
            "shadow_requests", n, None, sh.min_requests, "passed", "enough requests", source
        ),
        _check(
            "decision_agreement",
            agreement,
            sh.min_agreement,
            agreement >= sh.min_agreement,
            f"candidate and stable decide the same {rows}: share",
            source,
        ),
        _check(
            "mean_score_diff",
            float(diff.mean()),
            sh.max_mean_score_diff,
            float(diff.mean()) <= sh.max_mean_score_diff,
            f"mean |candidate - stable| score {rows}:",
            source,
        ),
        _check(
            "max_score_diff",
            float(diff.max()),
            sh.max_score_diff,
            float(diff.max()) <= sh.max_score_diff,
            f"largest |candidate - stable| score {rows}:",
            source,
        ),
        _check(
            "shadow_score_psi",
            value_psi,
            sh.max_score_psi,
            value_psi <= sh.max_score_psi,
            f"PSI of candidate vs stable scores {rows}:",
            source,
        ),
    ]


def judge_candidate_health(
    metrics: MetricProvider, params: Params, env: str, window_s: float
) -> list[CheckResult]:
    """The candidate's 5xx share and p99 on the mirrored requests (its own metrics)."""
    sh = params.canary.shadow
    window = max(1, math.ceil(window_s))
    queries = {
        "total": requests_query(env, "canary", window),
        "errors": errors_query(env, "canary", window),
        "p99": p99_query(env, "canary", window),
    }
    values: dict[str, float | None] = {}
    failure = ""
    for key, promql in queries.items():
        try:
            values[key] = metrics.query(promql)
        except MetricsError as error:
            failure = f"metrics query failed: {error}"
            values[key] = None
    if failure:
        return [
            CheckResult("shadow_error_rate", None, None, sh.max_error_rate, "failed", failure,
                        queries["errors"]),
            CheckResult("shadow_p99_latency", None, None, sh.max_p99_ms, "failed", failure,
                        queries["p99"]),
        ]  # fmt: skip
    total, errors, p99 = values["total"], values["errors"], values["p99"]
    if not total:
        note = "no mirrored requests on the candidate's metrics yet"
        return [
            CheckResult("shadow_error_rate", None, None, sh.max_error_rate, "inconclusive", note,
                        queries["errors"]),
            CheckResult("shadow_p99_latency", None, None, sh.max_p99_ms, "inconclusive", note,
                        queries["p99"]),
        ]  # fmt: skip
    rate = max(0.0, errors or 0.0) / total
    p99_ms = None if p99 is None else p99 * 1000
    return [
        _check(
            "shadow_error_rate",
            rate,
            sh.max_error_rate,
            rate <= sh.max_error_rate,
            "candidate 5xx share on mirrored requests",
            queries["errors"],
        ),
        _check(
            "shadow_p99_latency",
            p99_ms,
            sh.max_p99_ms,
            p99_ms is not None and p99_ms <= sh.max_p99_ms,
            "candidate p99 (ms) on mirrored requests",
            queries["p99"],
        ),
    ]


def analyse_shadow(
    source: ShadowSource,
    metrics: MetricProvider,
    params: Params,
    env: str,
    since: float,
    window_s: float,
) -> Analysis:
    """Every shadow check on what the candidate answered since `since`; an unreadable log
    (a damaged line other than a cut last one) fails the log checks, like a failed query."""
    try:
        joined = judge_joined(join(source, since), params)
    except DataError as error:
        message = f"prediction log unreadable: {error}"
        joined = [CheckResult(n, None, None, None, "failed", message) for n in SHADOW_CHECKS[:5]]
    checks = [*joined, *judge_candidate_health(metrics, params, env, window_s)]
    window = max(1, math.ceil(window_s))
    return Analysis(tuple(checks), window, 0, window)
