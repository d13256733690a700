"""Metric providers: where canary analysis runs its PromQL.

`MetricProvider` is the small interface the analysis uses: `query` for one number,
`query_vector` for a labelled set (the score histogram's buckets). `PrometheusMetricProvider`
runs instant queries against the Prometheus HTTP API (`GET /api/v1/query`).

No data is not an error: `query` answers None (an empty result or NaN) and the analysis
decides what that means (a failed check). Anything that keeps the question from being
answered -- Prometheus unreachable, a timeout, a refused query, an answer that is not the
Prometheus API -- raises `MetricsError` with the URL, what failed and what to do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import httpx

from modelops.errors import MetricsError

__all__ = ["MetricProvider", "MetricsError", "PrometheusMetricProvider", "Sample"]


@dataclass(frozen=True)
class Sample:
    """One series of an instant vector: its labels and its value at the query time."""

    labels: Mapping[str, str]
    value: float


@runtime_checkable
class MetricProvider(Protocol):
    """Runs instant PromQL queries."""

    def query(self, promql: str) -> float | None:
        """The single value of `promql`; None when there is no data (no series, or NaN).

        Raises MetricsError when the query cannot be answered, or returns several series.
        """
        ...

    def query_vector(self, promql: str) -> list[Sample]:
        """Every series of `promql` (empty when there is no data); MetricsError as `query`."""
        ...


class PrometheusMetricProvider:
    """Instant queries over the Prometheus HTTP API at `base_url` (e.g. http://127.0.0.1:9090)."""

    def __init__(self, base_url: str, timeout_s: float = 10.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise MetricsError(
                f"Prometheus URL {base_url!r} must start with http:// or https:// "
                "(set canary.prometheus_url in params.yaml or pass --prometheus-url)"
            )
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout_s)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> PrometheusMetricProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def query(self, promql: str) -> float | None:
        samples = self.query_vector(promql)
        if not samples:
            return None
        if len(samples) > 1:
            labels = [dict(s.labels) for s in samples[:3]]
            raise MetricsError(
                f"{self.base_url}: the query {promql!r} returned {len(samples)} series "
                f"(e.g. {labels}) where one number was expected; aggregate it with sum(...)"
            )
        value = samples[0].value
        return None if math.isnan(value) else value

    def query_vector(self, promql: str) -> list[Sample]:
        data = self._get_data(promql)
        kind, result = data.get("resultType"), data.get("result")
        if kind == "scalar" and isinstance(result, list) and len(result) == 2:
            return [Sample({}, _number(result[1], promql, self.base_url))]
        if kind != "vector" or not isinstance(result, list):
            raise MetricsError(
                f"{self.base_url}: the query {promql!r} gave a {kind} result; canary analysis "
                "needs an instant vector or scalar (no range selector [..] at the top level)"
            )
        samples = []
        for item in result:
            try:
                labels, (_, raw) = item["metric"], item["value"]
            except (KeyError, TypeError, ValueError):
                raise MetricsError(
                    f"{self.base_url}: malformed series in the answer to {promql!r}: {item!r}"
                ) from None
            samples.append(Sample(dict(labels), _number(raw, promql, self.base_url)))
        return samples

    def _get_data(self, promql: str) -> dict[str, Any]:
        url = f"{self.base_url}/api/v1/query"
        try:
            response = self._client.get("/api/v1/query", params={"query": promql})
        except httpx.TimeoutException:
            raise MetricsError(
                f"Prometheus at {url} did not answer within {self.timeout_s:g}s for {promql!r}: "
                "check its load, or raise canary.query_timeout_seconds"
            ) from None
        except httpx.HTTPError as error:
            raise MetricsError(
                f"Prometheus at {url} is unreachable ({type(error).__name__}: {error}): check "
                "that it runs and that canary.prometheus_url (or --prometheus-url) points at it"
            ) from None
        try:
            body = response.json()
        except ValueError:
            raise MetricsError(
                f"{url} answered HTTP {response.status_code} with something that is not the "
                f"Prometheus API's JSON ({response.text[:200]!r}): is this a Prometheus server?"
            ) from None
        if not isinstance(body, dict):
            raise MetricsError(f"{url} answered {body!r}, not the Prometheus API's JSON object")
        if body.get("status") != "success":
            raise MetricsError(
                f"Prometheus at {url} refused {promql!r} (HTTP {response.status_code}, "
                f"{body.get('errorType', 'error')}: {body.get('error', body)}); "
                "fix the query or check the server's log"
            )
        data = body.get("data")
        if not isinstance(data, dict):
            raise MetricsError(f"{url}: no 'data' object in the answer to {promql!r}: {body!r}")
        return data


def _number(raw: object, promql: str, base_url: str) -> float:
    """Prometheus sends sample values as strings ("1.5", "NaN", "+Inf")."""
    try:
        return float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise MetricsError(
            f"{base_url}: the value {raw!r} in the answer to {promql!r} is not a number"
        ) from None
