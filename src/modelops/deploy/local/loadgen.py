"""Real traffic for the rehearsal: POST /predict through nginx at a steady rate.

A canary judged on live metrics needs live requests; in the rehearsal nobody else sends
any. `LoadGenerator` runs `threads` threads, each with its own keep-alive connection,
sending records drawn in turn from real rows (the test split, or the model's input example)
at `rps` requests per second in total, `batch` records per request. It counts the answers by
status and by the model version that answered, which is how the tests check where nginx sends
traffic. It stops when asked to; a slow or failing backend slows nothing but its own share.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from modelops.deploy.local.procs import LocalEnvError


def records_from_table(path: Path, columns: list[str], limit: int = 2000) -> list[dict[str, Any]]:
    """Up to `limit` rows of a parquet/CSV table as JSON-ready records (NaN -> null)."""
    import pandas as pd

    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (OSError, ValueError) as error:
        raise LocalEnvError(f"cannot read load rows from {path}: {error}") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise LocalEnvError(
            f"{path} lacks the model's columns {missing}; pass rows with the model's features "
            "(data/split/test.parquet after `make run`)"
        )
    frame = frame[columns].head(limit).astype(object)
    frame = frame.where(frame.notna(), None)
    return [dict(zip(columns, row, strict=True)) for row in frame.itertuples(index=False)]


def records_from_model(model_dir: Path) -> list[dict[str, Any]]:
    """The model's own input example (input_example.json) as records."""
    path = model_dir / "input_example.json"
    try:
        raw = json.loads(path.read_text())
        rows = [dict(zip(raw["columns"], row, strict=True)) for row in raw["data"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise LocalEnvError(
            f"{path}: no usable input example ({error}); pass --rows with a table of inputs"
        ) from None
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in rows
    ]


class LoadGenerator:
    """Background /predict traffic; `stats()` says what came back."""

    def __init__(
        self,
        url: str,
        records: list[dict[str, Any]],
        *,
        rps: float = 100.0,
        batch: int = 1,
        threads: int = 4,
        seed: int = 0,
        timeout_s: float = 10.0,
    ) -> None:
        if not records:
            raise LocalEnvError("the load generator needs at least one input record")
        if rps <= 0 or batch < 1 or threads < 1:
            raise LocalEnvError("load: rps must be > 0, batch and threads >= 1")
        self.url = url.rstrip("/") + "/predict"
        self.records = list(records)
        random.Random(seed).shuffle(self.records)
        self.rps, self.batch, self.threads, self.timeout_s = rps, batch, threads, timeout_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._status: Counter[str] = Counter()
        self._versions: Counter[str] = Counter()
        self._workers: list[threading.Thread] = []
        self._next = 0

    def start(self) -> LoadGenerator:
        for i in range(self.threads):
            worker = threading.Thread(target=self._run, args=(i,), name=f"load-{i}", daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(self.timeout_s + 2)
        self._workers.clear()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": sum(self._status.values()),
                "by_status": dict(self._status),
                "by_model_version": dict(self._versions),
            }

    def _body(self) -> bytes:
        with self._lock:
            start, self._next = self._next, self._next + self.batch
        rows = [self.records[(start + i) % len(self.records)] for i in range(self.batch)]
        return json.dumps(rows[0] if self.batch == 1 else rows).encode()

    def _run(self, index: int) -> None:
        period = self.threads / self.rps  # each thread sends its share, evenly spaced
        due = time.monotonic() + index * period / self.threads
        headers = {"content-type": "application/json"}
        with httpx.Client(timeout=self.timeout_s) as client:
            while not self._stop.is_set():
                wait = due - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    break
                due = max(due + period, time.monotonic() - period)  # no burst to catch up
                try:
                    response = client.post(self.url, content=self._body(), headers=headers)
                    status = str(response.status_code)
                    version = (
                        str(response.json().get("model_version"))
                        if response.status_code == 200
                        else None
                    )
                except (httpx.HTTPError, ValueError) as error:
                    status, version = type(error).__name__, None
                with self._lock:
                    self._status[status] += 1
                    if version is not None:
                        self._versions[version] += 1
