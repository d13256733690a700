"""The first-deploy smoke test: is the new model's service ready and does it score?

With no stable version there is nothing to compare a canary with, so the controller sends
the first model to stable after this test: GET /ready answers 200, then `requests` real
predictions (the model's own input rows) each come back 200 with one probability per row.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import httpx

from modelops.errors import ModelopsError


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


def smoke_test_model(model_uri: str, workdir: Path, requests: int) -> None:
    """Serve `model_uri` (exported into `workdir`) with `python -m serving` on a free port
    and smoke-test it: for a first deploy whose target runs nothing to test yet."""
    from modelops.deploy.local.loadgen import records_from_model
    from modelops.export import export_model
    from serving.process import ServiceProcess

    model_dir = workdir / "smoke-model"
    export_model(model_uri, model_dir, force=True)
    try:
        with ServiceProcess(model=model_dir, log=workdir / "smoke-service.log") as service:
            smoke_test(service.url, records_from_model(model_dir), requests)
    except RuntimeError as error:
        if isinstance(error, SmokeTestFailed):
            raise
        raise SmokeTestFailed(f"{model_uri} did not start: {error}") from None
