"""Real traffic for the rehearsal: POST /predict through nginx at a steady rate.

A canary judged on live metrics needs live requests; in the rehearsal nobody else sends
any. `LoadGenerator` runs an asyncio loop in a background thread that sends records drawn
at random from real rows (the test split, or the model's input example) at `rps` requests per
second over keep-alive connections, `batch` records per request. It counts the answers by
status, by the model version that answered and by the upstream nginx chose (with the time the
first request to each was sent, from which `make bench-canary` counts), which is how the tests
check where nginx sends traffic. It stops when asked to.
"""

from __future__ import annotations

import asyncio
import json
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


class LoadGenerator:
    """Background /predict traffic at a fixed rate (open loop); `stats()` says what came back.

    Requests start every 1/rps seconds whether or not earlier ones have answered, as real
    clients do, so a slow canary delays only its own share; at most `max_in_flight` wait at
    once (beyond that a request is skipped and counted as such).
    """

    def __init__(
        self,
        url: str,
        records: list[dict[str, Any]],
        *,
        rps: float = 100.0,
        batch: int = 1,
        max_in_flight: int = 128,
        seed: int = 0,
        timeout_s: float = 10.0,
    ) -> None:
        if not records:
            raise LocalEnvError("the load generator needs at least one input record")
        if rps <= 0 or batch < 1 or max_in_flight < 1:
            raise LocalEnvError("load: rps must be > 0, batch and max_in_flight >= 1")
        self.url = url.rstrip("/") + "/predict"
        self.records = list(records)
        self._random = random.Random(seed)
        self.rps, self.batch, self.timeout_s = rps, batch, timeout_s
        self.max_in_flight = max_in_flight
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._status: Counter[str] = Counter()
        self._versions: Counter[str] = Counter()
        self._upstreams: Counter[str] = Counter()
        self._first_sent: dict[str, float] = {}  # upstream address -> first request's send time
        self._thread: threading.Thread | None = None

    def start(self) -> LoadGenerator:
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._run()), name="load-generator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout_s + 5)
            self._thread = None

    def __enter__(self) -> LoadGenerator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": sum(self._status.values()),
                "by_status": dict(self._status),
                "by_model_version": dict(self._versions),
                "by_upstream": dict(self._upstreams),
                "first_sent_by_upstream": dict(self._first_sent),
            }

    def _count(
        self, status: str, version: str | None, upstream: str | None = None, sent: float = 0.0
    ) -> None:
        with self._lock:
            self._status[status] += 1
            if version is not None:
                self._versions[version] += 1
            if upstream:
                self._upstreams[upstream] += 1
                first = self._first_sent.get(upstream)
                self._first_sent[upstream] = sent if first is None else min(first, sent)

    def _body(self) -> bytes:
        # Drawn at random: rows sent in a fixed cycle would meet nginx's fixed weighted
        # order, and each track would see its own fixed subset of the rows.
        rows = self._random.choices(self.records, k=self.batch)
        return json.dumps(rows[0] if self.batch == 1 else rows).encode()

    async def _send(self, client: httpx.AsyncClient, body: bytes) -> None:
        sent = time.time()
        try:
            response = await client.post(
                self.url, content=body, headers={"content-type": "application/json"}
            )
            version = None
            if response.status_code == 200:
                version = str(response.json().get("model_version"))
            upstream = response.headers.get("x-modelops-upstream")
            self._count(str(response.status_code), version, upstream, sent)
        except (httpx.HTTPError, ValueError) as error:
            self._count(type(error).__name__, None)

    async def _run(self) -> None:
        period = 1.0 / self.rps
        limits = httpx.Limits(
            max_connections=self.max_in_flight, max_keepalive_connections=self.max_in_flight
        )
        tasks: set[asyncio.Task[None]] = set()
        async with httpx.AsyncClient(timeout=self.timeout_s, limits=limits) as client:
            due = time.monotonic()
            while not self._stop.is_set():
                if len(tasks) < self.max_in_flight:
                    task = asyncio.create_task(self._send(client, self._body()))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                else:
                    self._count("skipped", None)
                due = max(due + period, time.monotonic() - period)  # no burst to catch up
                await asyncio.sleep(max(0.0, due - time.monotonic()))
            if tasks:
                await asyncio.wait(tasks, timeout=self.timeout_s)
