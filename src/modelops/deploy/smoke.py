"""The first-deploy smoke test: is the new model's service ready and does it score?

With no stable version there is nothing to compare a canary with, so the controller sends
the first model to stable after this test: GET /ready answers 200, then `requests` real
predictions (the model's own input rows) each come back 200 with one probability per row.
In an environment the test probes the deployed service (`smoke_test_deployed`); the local
rehearsal probes the service it started.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import httpx

from modelops.deploy.gitops import TrafficSplit
from modelops.deploy.router import Router
from modelops.deploy.state import Release
from modelops.errors import ModelopsError, RouterError


class SmokeTestFailed(ModelopsError, RuntimeError):
    """The service is not ready or did not score; the message says what came back."""


def smoke_test(
    url: str, records: list[dict[str, Any]], requests: int, timeout_s: float = 10.0
) -> None:
    """Raise SmokeTestFailed unless `url` is ready and scores `requests` records."""
    if not records:
        raise SmokeTestFailed("the smoke test needs at least one input record")
    base = url.rstrip("/")
    with httpx.Client(timeout=timeout_s) as client:
        try:
            ready = client.get(f"{base}/ready")
        except httpx.HTTPError as error:
            raise SmokeTestFailed(f"{base}/ready is unreachable: {error}") from None
        if ready.status_code != 200:
            raise SmokeTestFailed(f"{base}/ready answered {ready.status_code}: {ready.text[:300]}")
        for i in range(requests):
            record = records[i % len(records)]
            try:
                response = client.post(f"{base}/predict", json=record)
            except httpx.HTTPError as error:
                raise SmokeTestFailed(f"POST {base}/predict failed: {error}") from None
            if response.status_code != 200:
                raise SmokeTestFailed(
                    f"POST {base}/predict answered {response.status_code}: {response.text[:300]}"
                )
            predictions = response.json().get("predictions") or []
            scores = [p.get("score") for p in predictions]
            if len(scores) != 1 or not all(
                isinstance(s, float) and math.isfinite(s) and 0 <= s <= 1 for s in scores
            ):
                raise SmokeTestFailed(f"POST {base}/predict gave {predictions!r}, not one score")


def records_from_model(model_dir: Path) -> list[dict[str, Any]]:
    """The model's own input example (input_example.json) as records (NaN -> null)."""
    path = model_dir / "input_example.json"
    try:
        raw = json.loads(path.read_text())
        rows = [dict(zip(raw["columns"], row, strict=True)) for row in raw["data"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SmokeTestFailed(
            f"{path}: no usable input example ({error}); log the model with an input example "
            "(`modelops train` does) or pass rows with the model's features"
        ) from None
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in rows
    ]


def wait_ready(url: str, timeout_s: float, poll_s: float = 2.0) -> None:
    """Poll `url`/ready until it answers 200 (a rollout takes a while); SmokeTestFailed after
    `timeout_s` with the last answer."""
    base, last = url.rstrip("/"), "no answer"
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=min(10.0, timeout_s)) as client:
        while True:
            try:
                answer = client.get(f"{base}/ready")
                if answer.status_code == 200:
                    return
                last = f"{answer.status_code}: {answer.text[:200]}"
            except httpx.HTTPError as error:
                last = str(error) or type(error).__name__
            if time.monotonic() >= deadline:
                raise SmokeTestFailed(f"{base}/ready not ready after {timeout_s:g}s ({last})")
            time.sleep(poll_s)


def smoke_test_deployed(
    router: Router,
    release: Release,
    service_url: str,
    records: list[dict[str, Any]],
    requests: int,
    ready_timeout_s: float,
) -> None:
    """First deploy: put the release's image live through `router`, then smoke-test the
    deployed service at `service_url`. On failure the router's previous state (if any) is
    applied again before SmokeTestFailed goes up, so nothing half-deployed is left."""
    try:
        previous: TrafficSplit | None = router.current()
    except RouterError:
        previous = None
    router.apply(release.promoted_split())
    try:
        wait_ready(service_url, ready_timeout_s)
        smoke_test(service_url, records, requests)
    except SmokeTestFailed:
        if previous is not None:
            router.apply(previous)
        raise
