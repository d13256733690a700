"""Prediction log: one JSON line per scored row, written off the request path, by day.

Lines land in `<folder>/date=YYYY-MM-DD/predictions-<host>.jsonl` (the UTC day of the
request), so retention is deleting old day folders (`modelops logs prune`, or the log
bucket's expiration rule once a shipper copied the tree) and a reader can take a window.
Columns of `serve.log_redact` are dropped or hashed on the request path, before a line is
queued, so their values never reach the queue or the disk (serving/redact.py).

The request path turns its rows into JSON lines (orjson, a few microseconds per row) and
appends them to a deque; a writer thread appends them to the file every `flush_seconds`,
so file I/O never runs on the request path and the writer barely holds the GIL (a writer
that serialized lines itself stalled the event loop for milliseconds at each flush).
`close()` (called at graceful shutdown, after in-flight requests finish) writes everything
still queued. If the writer falls more than `max_rows` behind, new rows
are dropped and counted in modelops_prediction_log_dropped_total rather than growing memory
or slowing requests. Workers share one file per day: each flush is O_APPEND writes of whole
lines, at most 1 MiB each, so lines of different workers never interleave.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import re
import socket
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("serving.predlog")
CHUNK_BYTES = 1 << 20
PARTITION_PREFIX = "date="
Redact = Callable[[dict[str, Any]], dict[str, Any]]


def host_name() -> str:
    """This machine's (the pod's) name, safe as part of a file name."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "host"


def partition_file(folder: Path, day: str, host: str) -> Path:
    """Where one host's lines of one UTC day go."""
    return folder / f"{PARTITION_PREFIX}{day}" / f"predictions-{host}.jsonl"


@dataclass(frozen=True)
class Entry:
    """One request's worth of log lines."""

    request_id: str
    timestamp: float
    route: str
    records: Sequence[dict[str, Any]]
    scores: Sequence[float]
    decisions: Sequence[str]


class PredictionLog:
    """Non-blocking JSON-lines writer for predictions; see the module docstring."""

    def __init__(
        self,
        target: str,
        static: dict[str, Any],
        sample_rate: float = 1.0,
        flush_seconds: float = 0.5,
        max_rows: int = 100_000,
        on_drop: Any = None,
        redact: Redact | None = None,
        host: str | None = None,
    ) -> None:
        self.target, self.static, self.redact = target, static, redact
        self.host = host or host_name()
        self.sample_rate, self.flush_seconds, self.max_rows = sample_rate, flush_seconds, max_rows
        self.on_drop = on_drop
        self._queue: deque[tuple[str, list[bytes]]] = deque()
        self._queued_rows = 0  # written only by the request path
        self._written_rows = 0  # written only by the writer
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._fds: dict[str, int] = {}  # UTC day -> open file, written only by the writer

    @property
    def enabled(self) -> bool:
        return bool(self.target) and self.sample_rate > 0

    def start(self) -> None:
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
            self._thread.start()

    def submit(self, entry: Entry) -> None:
        """Queue a request's rows (sampled per request). Never blocks on I/O."""
        if self._thread is None or (self.sample_rate < 1.0 and random.random() >= self.sample_rate):
            return
        rows = len(entry.scores)
        if self._queued_rows - self._written_rows + rows > self.max_rows:
            if self.on_drop is not None:
                self.on_drop(rows)
            return
        self._queued_rows += rows
        day = datetime.fromtimestamp(entry.timestamp, UTC).date().isoformat()
        self._queue.append((day, self._lines(entry)))

    def close(self, timeout: float = 30.0) -> None:
        """Write every queued line, then stop the writer."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop = True
        self._wake.set()
        thread.join(timeout)
        if thread.is_alive():
            log.error("prediction log writer did not finish within %.0fs", timeout)

    # -- writer thread ------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(self.flush_seconds)
            self._flush()
        self._flush()
        self._close_files(keep=None)

    def _flush(self) -> None:
        by_day: dict[str, list[bytes]] = {}
        while self._queue:
            day, lines = self._queue.popleft()
            by_day.setdefault(day, []).extend(lines)
        for day, lines in by_day.items():
            try:
                self._write(day, lines)
            except OSError as error:
                log.error("prediction log %s: %s; %d lines dropped", self.target, error, len(lines))
                if self.on_drop is not None:
                    self.on_drop(len(lines))
            finally:
                self._written_rows += len(lines)
        if by_day:
            self._close_files(keep=max(by_day))  # yesterday's file once today's lines arrive

    def _close_files(self, keep: str | None) -> None:
        for day in [d for d in self._fds if d != keep]:
            fd = self._fds.pop(day)
            with contextlib.suppress(OSError):  # pipes and some devices cannot fsync
                os.fsync(fd)
            os.close(fd)

    def _lines(self, entry: Entry) -> list[bytes]:
        stamp = datetime.fromtimestamp(entry.timestamp, UTC).isoformat(timespec="milliseconds")
        out = []
        for row, (record, score, decision) in enumerate(
            zip(entry.records, entry.scores, entry.decisions, strict=True)
        ):
            line = {
                "request_id": entry.request_id,
                "row": row,
                "timestamp": stamp,
                "route": entry.route,
                **self.static,
                "features": record if self.redact is None else self.redact(record),
                "score": score,
                "decision": decision,
            }
            try:
                out.append(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
            except TypeError:  # e.g. a lone surrogate in a string: escape it instead
                out.append(json.dumps(line, ensure_ascii=True).encode() + b"\n")
        return out

    def _write(self, day: str, lines: list[bytes]) -> None:
        if self.target == "-":
            sys.stdout.buffer.write(b"".join(lines))
            sys.stdout.buffer.flush()
            return
        fd = self._fds.get(day)
        if fd is None:
            path = partition_file(Path(self.target), day, self.host)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = self._fds[day] = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        chunk: list[bytes] = []
        size = 0
        for line in [*lines, b""]:
            if chunk and (not line or size + len(line) > CHUNK_BYTES):
                view = memoryview(b"".join(chunk))  # whole lines per write: no interleaving
                while view:
                    view = view[os.write(fd, view) :]
                chunk, size = [], 0
            chunk.append(line)
            size += len(line)
