"""Canary analysis verdicts: thresholds, too little traffic, missing data, failed queries, PSI.

The PromQL answers come from an in-memory MetricProvider (tests/fixtures/canary_fakes.py);
PrometheusMetricProvider and the same queries on a real Prometheus are tested in
test_canary_metrics.py.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from modelops.config import CanaryParams, Params
from modelops.deploy.analysis import (
    CHECKS,
    Analysis,
    analyse,
    bucket_counts,
    judge_p99,
    judge_requests,
    p99_limit_ms,
    score_psi,
)
from modelops.deploy.metrics import Sample
from modelops.monitor.drift import psi
from tests.fixtures.canary_fakes import BASE_SCORES, SHIFTED_SCORES, FakeMetrics, Track


def verdicts(analysis: Analysis) -> dict[str, str]:
    return {c.name: c.verdict for c in analysis.checks}


def samples(cumulative: dict[str, float]) -> list[Sample]:
    return [Sample({"le": le}, v) for le, v in cumulative.items()]


def test_healthy_canary_passes_every_check(params: Params) -> None:
    analysis = analyse(FakeMetrics(), params, "staging", 60)
    assert verdicts(analysis) == dict.fromkeys(CHECKS, "passed")
    assert analysis.verdict == "passed"
    assert analysis.summary() == "all checks passed"


def test_queries_select_track_env_window_and_offset(params: Params) -> None:
    metrics = FakeMetrics()
    analyse(metrics, params, "staging", 29.2, stable_offset_s=40.1)
    canary = [q for q in metrics.queries if 'track="canary"' in q]
    stable = [q for q in metrics.queries if 'track="stable"' in q]
    assert len(canary) == len(stable) == 4
    assert all('env="staging"' in q for q in metrics.queries)
    assert all("[30s]" in q and "offset" not in q for q in canary)
    assert all("[30s] offset 41s" in q for q in stable)


def test_error_rate_above_limit_fails_and_no_5xx_series_means_zero(params: Params) -> None:
    metrics = FakeMetrics()
    metrics.tracks["canary"].errors = 25.0  # 2.5 % of 1000
    result = analyse(metrics, params, "e", 60).check("error_rate")
    assert result.verdict == "failed"
    assert result.canary == pytest.approx(0.025)
    assert result.stable == 0.0  # stable has no 5xx series at all: no errors
    metrics.tracks["canary"].errors = 10.0  # exactly 1 %: allowed
    assert analyse(metrics, params, "e", 60).check("error_rate").verdict == "passed"


def test_p99_relative_to_stable_with_slack_and_cap(params: Params) -> None:
    c = params.canary
    # Fast services: 2x slower but within the slack is noise, not a regression.
    assert judge_p99(0.004, 0.002, c.max_p99_ratio, c.p99_slack_ms, c.max_p99_ms).verdict == (
        "passed"
    )
    # Well past ratio and slack.
    slow = judge_p99(0.080, 0.010, c.max_p99_ratio, c.p99_slack_ms, c.max_p99_ms)
    assert slow.verdict == "failed" and "x stable" in slow.message
    assert slow.threshold == pytest.approx(60.0)  # max(1.5 x 10, 10 + 50)
    # Slow stable: the ratio allows more, the absolute cap does not.
    capped = judge_p99(0.210, 0.150, c.max_p99_ratio, c.p99_slack_ms, c.max_p99_ms)
    assert capped.verdict == "failed" and "cap" in capped.message
    assert p99_limit_ms(150, 1.5, 25, 200) == 200
    assert p99_limit_ms(100, 1.5, 25, 200) == 150


def test_p99_in_the_inf_bucket_fails(params: Params) -> None:
    metrics = FakeMetrics()
    metrics.tracks["canary"].p99_s = math.inf  # slower than the last bucket (2.5 s)
    result = analyse(metrics, params, "e", 60).check("p99_latency")
    assert result.verdict == "failed"
    assert (
        Analysis.from_dict(analyse(metrics, params, "e", 60).to_dict()).check("p99_latency").canary
        == math.inf
    )


def test_too_few_requests_is_inconclusive_and_nothing_else_is_judged(params: Params) -> None:
    metrics = FakeMetrics()
    metrics.tracks["canary"].requests = params.canary.min_requests - 1
    metrics.tracks["canary"].errors = 30.0  # would fail if judged
    metrics.tracks["canary"].p99_s = None  # no latency data: explained by the low traffic
    analysis = analyse(metrics, params, "e", 60)
    assert analysis.verdict == "inconclusive"
    assert verdicts(analysis) == dict.fromkeys(CHECKS, "inconclusive")
    assert "too few requests" in analysis.check("requests").message
    assert judge_requests(50, 50, 50).verdict == "passed"


def test_missing_request_series_fails(params: Params) -> None:
    metrics = FakeMetrics()
    metrics.tracks["stable"].requests = None
    result = analyse(metrics, params, "e", 60).check("requests")
    assert result.verdict == "failed"
    assert "no metrics for stable in the window" in result.message


@pytest.mark.parametrize(("field", "check"), [("p99_s", "p99_latency"), ("scores", "score_psi")])
def test_missing_data_with_traffic_fails(params: Params, field: str, check: str) -> None:
    metrics = FakeMetrics()
    setattr(metrics.tracks["canary"], field, None)
    analysis = analyse(metrics, params, "e", 60)
    assert analysis.check(check).verdict == "failed"
    assert analysis.verdict == "failed"
    assert analysis.failed == [check]


def test_prometheus_unreachable_fails_every_check(params: Params) -> None:
    analysis = analyse(FakeMetrics(down=True), params, "e", 60)
    assert verdicts(analysis) == dict.fromkeys(CHECKS, "failed")
    assert all("metrics query failed" in c.message for c in analysis.checks)
    assert all("unreachable" in c.message for c in analysis.checks)


def test_one_failed_query_fails_its_check_only(params: Params) -> None:
    class LatencyRefused(FakeMetrics):
        def query(self, promql: str) -> float | None:
            if promql.startswith("histogram_quantile"):
                from modelops.errors import MetricsError

                raise MetricsError("Prometheus refused the query (bad_data: parse error)")
            return super().query(promql)

    analysis = analyse(LatencyRefused(), params, "e", 60)
    assert analysis.failed == ["p99_latency"]
    assert "bad_data" in analysis.check("p99_latency").message


def test_score_psi_equals_drift_psi_on_the_same_counts(params: Params) -> None:
    """One PSI definition: analysis de-cumulates the buckets and calls monitor.drift.psi."""
    metrics = FakeMetrics()
    metrics.tracks["canary"].scores = SHIFTED_SCORES
    result = analyse(metrics, params, "e", 60).check("score_psi")
    canary = np.array(SHIFTED_SCORES, dtype=float)
    stable = np.array(BASE_SCORES, dtype=float)
    expected = psi(canary / canary.sum(), stable / stable.sum(), params.drift.epsilon)
    assert result.canary == pytest.approx(expected, rel=1e-12)
    assert result.verdict == "failed"
    assert expected > params.canary.max_score_psi


def test_score_psi_counts_empty_buckets_with_epsilon(params: Params) -> None:
    """A canary squeezed into few buckets is not under-reported: empty bins count as eps."""
    squeezed = [0.0] * 20
    squeezed[9] = 1000.0
    metrics = FakeMetrics()
    metrics.tracks["canary"].scores = squeezed
    value = analyse(metrics, params, "e", 60).check("score_psi").canary
    stable = np.array(BASE_SCORES, dtype=float)
    expected = psi(np.array(squeezed) / 1000, stable / stable.sum(), params.drift.epsilon)
    assert value == pytest.approx(expected)
    assert expected > 2  # and clearly a failure


def test_bucket_counts_decumulate_and_stay_monotone() -> None:
    # increase() extrapolates each bucket separately: 0.1's cumulative may dip below 0.05's.
    bounds, counts = bucket_counts(
        samples({"0.1": 9.9, "0.05": 10.0, "+Inf": 30.0, "1.0": 30.0, "0.5": 25.0})
    )
    assert bounds == [0.05, 0.1, 0.5, 1.0, math.inf]
    assert counts.tolist() == [10.0, 0.0, 15.0, 5.0, 0.0]


def test_score_psi_refuses_different_bucket_layouts() -> None:
    with pytest.raises(ValueError, match="different buckets"):
        score_psi(samples({"0.5": 1, "+Inf": 2}), samples({"0.25": 1, "+Inf": 2}), 1e-4)


def test_few_scored_rows_make_psi_inconclusive(params: Params) -> None:
    metrics = FakeMetrics()
    metrics.tracks["canary"].scores = [s / 10 for s in SHIFTED_SCORES]  # ~88 rows
    result = analyse(metrics, params, "e", 60).check("score_psi")
    assert result.verdict == "inconclusive"
    assert "too few scored rows" in result.message


def test_analysis_round_trips_through_json(params: Params) -> None:
    metrics = FakeMetrics(tracks={"canary": Track(errors=50.0), "stable": Track()})
    analysis = analyse(metrics, params, "e", 60, stable_offset_s=12)
    again = Analysis.from_dict(analysis.to_dict())
    assert again == analysis
    assert again.verdict == "failed"


def test_canary_limits_match_the_alerts_and_drift_levels(params: Params, repo_root: Path) -> None:
    """Canary thresholds equal the production alerts' levels and drift.psi_alert."""
    rules = yaml.safe_load(
        (repo_root / "infra/local/prometheus/rules/modelops-alerts.yml").read_text()
    )
    alerts = {r["alert"]: r["expr"] for g in rules["groups"] for r in g["rules"]}
    latency = re.search(r"> ([0-9.]+)$", alerts["ModelopsHighLatencyP99"].strip())
    errors = re.search(r"> ([0-9.]+)$", alerts["ModelopsHighErrorRate"].strip())
    assert latency and errors
    assert params.canary.max_p99_ms == pytest.approx(float(latency.group(1)) * 1000)
    assert params.canary.max_error_rate == float(errors.group(1))
    assert params.canary.max_score_psi == params.drift.psi_alert


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"steps": [25, 5, 100]}, "rising order"),
        ({"steps": [0, 50]}, "percent from 1 to 100"),
        ({"steps": []}, "at least 1 item"),
        ({"progress_deadline_seconds": 5, "interval_seconds": 10}, "at least interval_seconds"),
        ({"failure_threshold": 0}, "greater than or equal to 1"),
    ],
)
def test_bad_canary_params_are_refused(
    params: Params, update: dict[str, object], message: str
) -> None:
    data = {**params.canary.model_dump(), **update}
    with pytest.raises(ValueError, match=message):
        CanaryParams.model_validate(data)
