"""Load test of the model service with payloads sampled from the real test split.

Run through `make loadtest` (python -m modelops.bench.serve loadtest), which passes the
users, spawn rate and run time from params.yaml serve.loadtest and judges the result; or
by hand: `locust -f serving/locustfile.py --host http://127.0.0.1:8000`.
Environment: MODELOPS_PARAMS (default params.yaml), MODELOPS_LOADTEST_DATA (default
data/split/test.parquet).
"""

from __future__ import annotations

import json
import os
import random
from typing import Any

from locust import FastHttpUser, constant_throughput, events, task

ROWS: list[dict[str, Any]] = []
SETTINGS: dict[str, float] = {"user_rps": 10.0}


@events.init.add_listener
def _load_rows(**_: Any) -> None:
    """Read the test split once per locust process (not at import time)."""
    from modelops.config import load_params
    from modelops.pipeline.data import coerce_features, read_split

    params = load_params(os.environ.get("MODELOPS_PARAMS", "params.yaml"))
    data = os.environ.get("MODELOPS_LOADTEST_DATA", "data/split/test.parquet")
    features = coerce_features(read_split(data), params.data).astype(object)
    ROWS[:] = [
        {k: (None if v is None or v != v else v) for k, v in r.items()}
        for r in features.to_dict("records")
    ]
    SETTINGS["user_rps"] = params.serve.loadtest.user_rps


def _pace(user: Any) -> float:
    return float(constant_throughput(SETTINGS["user_rps"])(user))


class ModelClient(FastHttpUser):
    """A client scoring real records: mostly single records, some batches, some MLflow calls."""

    wait_time = _pace

    def _post(self, path: str, body: Any, rows: int, name: str) -> None:
        with self.client.post(
            path,
            data=json.dumps(body),
            headers={"Content-Type": "application/json"},
            name=name,
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
                return
            got = len(response.json().get("predictions", []))
            if got != rows:
                response.failure(f"{got} predictions for {rows} rows")

    @task(8)
    def predict_one(self) -> None:
        self._post("/predict", random.choice(ROWS), 1, "/predict [1]")

    @task(1)
    def predict_batch(self) -> None:
        self._post("/predict", random.sample(ROWS, 10), 10, "/predict [10]")

    @task(1)
    def invocations(self) -> None:
        row = random.choice(ROWS)
        body = {"dataframe_split": {"columns": list(row), "data": [list(row.values())]}}
        self._post("/invocations", body, 1, "/invocations [1]")
