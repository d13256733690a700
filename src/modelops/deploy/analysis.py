"""Canary analysis: canary against stable on the same live traffic, one interval at a time.

Four checks over the service's metrics (names and labels in serving/README.md; Prometheus adds
`track` and `env` per scrape target). The hard ones (requests, error_rate, p99_latency) read
the last `window_s` seconds (`canary.check_window_seconds`, sliding, judged every
`canary.check_interval_seconds`); the distribution check (score_psi) reads the step's traffic
so far (`score_window_s`, at most `canary.interval_seconds`), which needs more rows:

- requests:    prediction requests (routes /predict and /invocations) on each track; fewer
               than `canary.min_requests` on either is inconclusive: nothing else is judged.
- error_rate:  share of those requests answered with a 5xx on canary; at most
               `canary.max_error_rate` (4xx is the client's error and does not count).
- p99_latency: canary p99 from the latency histogram; fails above `canary.max_p99_ms`, or
               above `canary.max_p99_ratio` x stable p99 when canary is also more than
               `canary.p99_slack_ms` slower (a 2 ms vs 1 ms pair is bucket noise, not a regression).
- score_psi:   PSI of canary's predicted-score histogram against stable's, with the PSI of
               `monitor.drift` and `drift.epsilon`; at most `canary.max_score_psi`. Judged only
               with `canary.min_score_rows` scored rows on each track (inconclusive before).

A query that fails (MetricsError) or returns no data is a failed check: the controller never
promotes on missing data. When canary takes all traffic (weight 100) stable gets none, so the
stable side is read over the window just before the step began (`stable_offset_s`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np

from modelops.config import Params
from modelops.deploy.metrics import MetricProvider, Sample
from modelops.errors import MetricsError
from modelops.monitor.drift import psi

Verdict = Literal["passed", "failed", "inconclusive"]
CHECKS: tuple[str, ...] = ("requests", "error_rate", "p99_latency", "score_psi")
SCORING_ROUTES = "/predict|/invocations"
REQUESTS = "modelops_http_requests_total"
LATENCY_BUCKETS = "modelops_http_request_duration_seconds_bucket"
SCORE_BUCKETS = "modelops_prediction_score_bucket"
READY = "modelops_model_ready"


@dataclass(frozen=True)
class CheckResult:
    """One check of one interval: the values compared, the limit and the verdict."""

    name: str
    canary: float | None
    stable: float | None
    threshold: float | None
    verdict: Verdict
    message: str
    query: str = ""  # the canary side's PromQL: what a reader runs to see the value again

    def evidence(self) -> str:
        """What was measured, the limit and the query behind it (for a decision's reason)."""
        return (
            f"{self.name} measured {_show(self.canary)}, threshold {_show(self.threshold)}, "
            f"query {self.query or '-'}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {k: _json_number(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        return cls(**{k: _from_json_number(v) for k, v in data.items()})


@dataclass(frozen=True)
class Analysis:
    """Every check of one interval. The interval failed if any check failed."""

    checks: tuple[CheckResult, ...]
    window_s: int
    stable_offset_s: int = 0
    score_window_s: int | None = None  # the score PSI's window (None: window_s)

    @property
    def verdict(self) -> Verdict:
        verdicts = {c.verdict for c in self.checks}
        if "failed" in verdicts:
            return "failed"
        return "inconclusive" if "inconclusive" in verdicts else "passed"

    @property
    def failed(self) -> list[str]:
        return [c.name for c in self.checks if c.verdict == "failed"]

    def check(self, name: str) -> CheckResult:
        for result in self.checks:
            if result.name == name:
                return result
        raise KeyError(name)

    def summary(self) -> str:
        """One line naming what failed or was inconclusive, and why."""
        bad = [c for c in self.checks if c.verdict != "passed"]
        if not bad:
            return "all checks passed"
        return "; ".join(f"{c.name} {c.verdict}: {c.message}" for c in bad)

    def to_dict(self) -> dict[str, Any]:
        return {
            "window_s": self.window_s,
            "stable_offset_s": self.stable_offset_s,
            "score_window_s": self.score_window_s,
            "verdict": self.verdict,
            "checks": [c.to_dict() for c in self.checks],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Analysis:
        return cls(
            checks=tuple(CheckResult.from_dict(c) for c in data["checks"]),
            window_s=int(data["window_s"]),
            stable_offset_s=int(data.get("stable_offset_s", 0)),
            score_window_s=data.get("score_window_s"),
        )


def _show(value: float | None) -> str:
    return "no data" if value is None else f"{value:.4g}"


def _json_number(value: Any) -> Any:
    """JSON has no NaN/Infinity: write them as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _from_json_number(value: Any) -> Any:
    if value in ("inf", "-inf", "nan"):
        return float(value)
    return value


# PromQL -------------------------------------------------------------------------------------


def label_value(value: str) -> str:
    """A PromQL string literal for a label value."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def selector(env: str, track: str, extra: str = "") -> str:
    """Label matchers for one track of one environment (an empty env matches any)."""
    parts = [f"track={label_value(track)}"]
    if env:
        parts.append(f"env={label_value(env)}")
    if extra:
        parts.append(extra)
    return "{" + ", ".join(parts) + "}"


def _range(window_s: int, offset_s: int) -> str:
    return f"[{window_s}s]" + (f" offset {offset_s}s" if offset_s > 0 else "")


def requests_query(env: str, track: str, window_s: int, offset_s: int = 0) -> str:
    """Prediction requests in the window; 0 (not "no data") while a scraped service has none.

    The service creates a route's counter at its first request, so a live track without
    traffic has no request series yet: `modelops_model_ready`, exported from the start, tells
    "up, no requests" (0: inconclusive) from "not scraped" (no data: failed).
    """
    match = selector(env, track, f'route=~"{SCORING_ROUTES}"')
    rng = _range(window_s, offset_s)
    return (
        f"sum(increase({REQUESTS}{match}{rng}))"
        f" or (max(max_over_time({READY}{selector(env, track)}{rng})) * 0)"
    )


def errors_query(env: str, track: str, window_s: int, offset_s: int = 0) -> str:
    match = selector(env, track, f'route=~"{SCORING_ROUTES}", status=~"5.."')
    return f"sum(increase({REQUESTS}{match}{_range(window_s, offset_s)}))"


def p99_query(env: str, track: str, window_s: int, offset_s: int = 0) -> str:
    match = selector(env, track, f'route=~"{SCORING_ROUTES}"')
    rng = _range(window_s, offset_s)
    return f"histogram_quantile(0.99, sum by (le) (rate({LATENCY_BUCKETS}{match}{rng})))"


def score_buckets_query(env: str, track: str, window_s: int, offset_s: int = 0) -> str:
    rng = _range(window_s, offset_s)
    return f"sum by (le) (increase({SCORE_BUCKETS}{selector(env, track)}{rng}))"


# Pure verdicts ------------------------------------------------------------------------------


def judge_requests(canary: float | None, stable: float | None, min_requests: int) -> CheckResult:
    """Enough prediction requests on both tracks in the window to judge anything."""
    name = "requests"
    missing = [t for t, v in (("canary", canary), ("stable", stable)) if v is None]
    if missing:
        return CheckResult(
            name,
            canary,
            stable,
            min_requests,
            "failed",
            f"no metrics for {' and '.join(missing)} in the window: is the service up and "
            "scraped by Prometheus with the track/env labels, and does the window hold at "
            "least two scrapes (canary.check_window_seconds >= 2 x scrape interval)?",
        )
    assert canary is not None and stable is not None
    low = [f"{t} {v:.0f}" for t, v in (("canary", canary), ("stable", stable)) if v < min_requests]
    if low:
        return CheckResult(
            name,
            canary,
            stable,
            min_requests,
            "inconclusive",
            f"too few requests in the window ({', '.join(low)} < {min_requests})",
        )
    return CheckResult(name, canary, stable, min_requests, "passed", "enough requests")


def error_rate(errors: float | None, total: float | None) -> float | None:
    """5xx share; no 5xx series while requests exist means no errors yet."""
    if total is None or total <= 0:
        return None
    return max(0.0, errors or 0.0) / total


def judge_error_rate(
    canary: float | None, stable: float | None, max_error_rate: float
) -> CheckResult:
    name = "error_rate"
    if canary is None:
        return CheckResult(
            name, canary, stable, max_error_rate, "failed", "no error-rate data for canary"
        )
    if canary > max_error_rate:
        return CheckResult(
            name,
            canary,
            stable,
            max_error_rate,
            "failed",
            f"canary answers {canary:.2%} of predictions with 5xx (> {max_error_rate:.2%})",
        )
    return CheckResult(name, canary, stable, max_error_rate, "passed", f"canary 5xx {canary:.2%}")


def p99_limit_ms(stable_ms: float, max_ratio: float, slack_ms: float, cap_ms: float) -> float:
    """The highest canary p99 allowed: ratio x stable, at least stable + slack, never the cap."""
    return min(cap_ms, max(stable_ms * max_ratio, stable_ms + slack_ms))


def judge_p99(
    canary_s: float | None,
    stable_s: float | None,
    max_ratio: float,
    slack_ms: float,
    cap_ms: float,
) -> CheckResult:
    """Canary p99 latency (reported in ms) against stable's and the absolute cap."""
    name = "p99_latency"
    canary = None if canary_s is None else canary_s * 1000
    stable = None if stable_s is None else stable_s * 1000
    if canary is None or stable is None:
        which = " and ".join(t for t, v in (("canary", canary), ("stable", stable)) if v is None)
        return CheckResult(name, canary, stable, cap_ms, "failed", f"no latency data for {which}")
    limit = p99_limit_ms(stable, max_ratio, slack_ms, cap_ms)
    if canary > limit:
        why = (
            f"above the cap {cap_ms:g} ms"
            if canary > cap_ms
            else f"above {max_ratio:g} x stable {stable:.1f} ms (+{slack_ms:g} ms slack)"
        )
        return CheckResult(
            name, canary, stable, limit, "failed", f"canary p99 {canary:.1f} ms is {why}"
        )
    return CheckResult(
        name, canary, stable, limit, "passed", f"canary p99 {canary:.1f} ms <= {limit:.1f} ms"
    )


def bucket_counts(samples: Sequence[Sample]) -> tuple[list[float], np.ndarray]:
    """Per-bucket counts from a cumulative histogram's `le` series: (upper bounds, counts)."""
    cumulative = sorted((float(s.labels["le"]), s.value) for s in samples if "le" in s.labels)
    bounds = [le for le, _ in cumulative]
    totals = np.array([max(0.0, v) for _, v in cumulative], dtype=float)
    # increase() extrapolates each bucket on its own: keep the cumulative counts monotone.
    totals = np.maximum.accumulate(totals) if totals.size else totals
    counts = np.diff(totals, prepend=0.0)
    return bounds, counts


def score_psi(
    canary: Sequence[Sample], stable: Sequence[Sample], epsilon: float
) -> tuple[float, float, float]:
    """PSI of canary's score histogram against stable's (the reference): (psi, rows, rows)."""
    canary_bounds, canary_counts = bucket_counts(canary)
    stable_bounds, stable_counts = bucket_counts(stable)
    if canary_bounds != stable_bounds:
        raise ValueError(
            f"the score histograms have different buckets (canary {canary_bounds}, "
            f"stable {stable_bounds}): both services must run the same serving version"
        )
    canary_rows, stable_rows = float(canary_counts.sum()), float(stable_counts.sum())
    if canary_rows <= 0 or stable_rows <= 0:
        return math.nan, canary_rows, stable_rows
    value = psi(canary_counts / canary_rows, stable_counts / stable_rows, epsilon)
    return value, canary_rows, stable_rows


def judge_score_psi(
    canary: Sequence[Sample],
    stable: Sequence[Sample],
    max_psi: float,
    min_rows: int,
    epsilon: float,
) -> CheckResult:
    name = "score_psi"
    missing = [t for t, v in (("canary", canary), ("stable", stable)) if not v]
    if missing:
        return CheckResult(
            name,
            None,
            None,
            max_psi,
            "failed",
            f"no score histogram for {' and '.join(missing)}",
        )
    try:
        value, canary_rows, stable_rows = score_psi(canary, stable, epsilon)
    except ValueError as error:
        return CheckResult(name, None, None, max_psi, "failed", str(error))
    if min(canary_rows, stable_rows) < min_rows:
        return CheckResult(
            name,
            None if math.isnan(value) else value,
            None,
            max_psi,
            "inconclusive",
            f"too few scored rows for PSI (canary {canary_rows:.0f}, stable {stable_rows:.0f}"
            f" < {min_rows})",
        )
    if value > max_psi:
        return CheckResult(
            name,
            value,
            None,
            max_psi,
            "failed",
            f"canary scores differ from stable's: PSI {value:.3f} > {max_psi:g} "
            f"({canary_rows:.0f} canary, {stable_rows:.0f} stable rows)",
        )
    return CheckResult(
        name,
        value,
        None,
        max_psi,
        "passed",
        f"score PSI {value:.3f} ({canary_rows:.0f} canary, {stable_rows:.0f} stable rows)",
    )


def _not_judged(result: CheckResult, reason: str) -> CheckResult:
    """Too little traffic: the check is reported but not judged (no data is expected then)."""
    return CheckResult(
        result.name,
        result.canary,
        result.stable,
        result.threshold,
        "inconclusive",
        f"not judged ({reason})",
    )


def _query_failed(result: CheckResult, errors: Sequence[str]) -> CheckResult:
    """A query behind this check could not run: the check failed, whatever the values say."""
    return CheckResult(
        result.name,
        result.canary,
        result.stable,
        result.threshold,
        "failed",
        "metrics query failed: " + errors[0],
    )


# The analysis -------------------------------------------------------------------------------


def analyse(
    metrics: MetricProvider,
    params: Params,
    env: str,
    window_s: float,
    stable_offset_s: float = 0,
    score_window_s: float | None = None,
) -> Analysis:
    """Run every check over the last `window_s` seconds (stable's window `stable_offset_s` ago);
    the score PSI over the last `score_window_s` (default `window_s`): the step's traffic so far."""
    c = params.canary
    window = max(1, math.ceil(window_s))
    score_window = window if score_window_s is None else max(1, math.ceil(score_window_s))
    offset = max(0, math.ceil(stable_offset_s))
    tracks = {"canary": 0, "stable": offset}
    errors: dict[str, list[str]] = {name: [] for name in CHECKS}

    def scalar(check: str, promql: str) -> float | None:
        try:
            return metrics.query(promql)
        except MetricsError as error:
            errors[check].append(str(error))
            return None

    def vector(check: str, promql: str) -> list[Sample]:
        try:
            return metrics.query_vector(promql)
        except MetricsError as error:
            errors[check].append(str(error))
            return []

    total, fivexx, p99, scores = {}, {}, {}, {}
    for t, o in tracks.items():
        total[t] = scalar("requests", requests_query(env, t, window, o))
        fivexx[t] = scalar("error_rate", errors_query(env, t, window, o))
        p99[t] = scalar("p99_latency", p99_query(env, t, window, o))
        scores[t] = vector("score_psi", score_buckets_query(env, t, score_window, o))
    if errors["requests"]:
        errors["error_rate"] += errors["requests"]  # the rate needs the request counts too

    requests = judge_requests(total["canary"], total["stable"], c.min_requests)
    rate = {t: error_rate(fivexx[t], total[t]) for t in tracks}
    others = [
        judge_error_rate(rate["canary"], rate["stable"], c.max_error_rate),
        judge_p99(p99["canary"], p99["stable"], c.max_p99_ratio, c.p99_slack_ms, c.max_p99_ms),
        judge_score_psi(
            scores["canary"],
            scores["stable"],
            c.max_score_psi,
            c.min_score_rows,
            params.drift.epsilon,
        ),
    ]
    if requests.verdict == "inconclusive":
        others = [_not_judged(r, "too few requests") for r in others]
    checks = [
        _query_failed(r, errors[r.name]) if errors[r.name] else r for r in [requests, *others]
    ]
    queries = {
        "requests": requests_query(env, "canary", window),
        "error_rate": errors_query(env, "canary", window),
        "p99_latency": p99_query(env, "canary", window),
        "score_psi": score_buckets_query(env, "canary", score_window),
    }
    checks = [replace(r, query=queries[r.name]) for r in checks]
    return Analysis(tuple(checks), window, offset, score_window)
