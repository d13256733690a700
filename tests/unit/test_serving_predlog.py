"""The prediction log: one JSON line per scored row, sampled, written off the request path,
nothing queued lost at close, and a stuck or failing disk never reaches the requests."""

from __future__ import annotations

import json
import os
import random
import threading
import time
from pathlib import Path

from serving.predlog import Entry, PredictionLog

STATIC = {"model_name": "credit-scoring", "model_version": "7", "environment": "test"}


def entry(i: int, rows: int = 1) -> Entry:
    records = [{"Age": float(i), "Home": "owner" if r % 2 else None} for r in range(rows)]
    scores = [0.25 + 0.5 * (r % 2) for r in range(rows)]
    decisions = ["positive" if s >= 0.5 else "negative" for s in scores]
    return Entry(f"req-{i}", 1_800_000_000.5, "/predict", records, scores, decisions)


def read_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_one_line_per_row_with_what_monitoring_needs(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path / "logs" / "p.jsonl"), STATIC, flush_seconds=60)
    log.start()
    log.submit(entry(1, rows=3))
    log.submit(entry(2))
    log.close()  # the flush interval never elapsed: close() alone must write everything
    lines = read_lines(tmp_path / "logs" / "p.jsonl")
    assert [(x["request_id"], x["row"]) for x in lines] == [
        ("req-1", 0),
        ("req-1", 1),
        ("req-1", 2),
        ("req-2", 0),
    ]
    first = lines[1]
    assert first == {
        "request_id": "req-1",
        "row": 1,
        "timestamp": "2027-01-15T08:00:00.500+00:00",
        "route": "/predict",
        **STATIC,
        "features": {"Age": 1.0, "Home": "owner"},
        "score": 0.75,
        "decision": "positive",
    }


def test_sampling_keeps_whole_requests_at_about_the_rate(tmp_path: Path) -> None:
    random.seed(3)
    log = PredictionLog(str(tmp_path / "p.jsonl"), STATIC, sample_rate=0.25)
    log.start()
    for i in range(2000):
        log.submit(entry(i, rows=2))
    log.close()
    lines = read_lines(tmp_path / "p.jsonl")
    requests = {x["request_id"] for x in lines}
    assert 400 <= len(requests) <= 600
    assert len(lines) == 2 * len(requests)  # a sampled request is logged whole


def test_rate_zero_or_no_target_writes_nothing(tmp_path: Path) -> None:
    for target, rate in ((str(tmp_path / "a.jsonl"), 0.0), ("", 1.0)):
        log = PredictionLog(target, STATIC, sample_rate=rate)
        log.start()
        log.submit(entry(1))
        log.close()
    assert list(tmp_path.iterdir()) == []


def test_a_stuck_writer_never_blocks_submit(tmp_path: Path) -> None:
    """The log target is a FIFO nobody reads yet: the writer thread blocks in open(); the
    request path must not notice, and every line arrives once a reader shows up."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    log = PredictionLog(str(fifo), STATIC, flush_seconds=0.01)
    log.start()
    log.submit(entry(0))
    time.sleep(0.1)  # the writer is now stuck opening the FIFO
    started = time.perf_counter()
    for i in range(1, 2000):
        log.submit(entry(i))
    assert time.perf_counter() - started < 1.0
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    log.close()
    reader.join(10)
    lines = [json.loads(x) for x in b"".join(received).splitlines()]
    assert [x["request_id"] for x in lines] == [f"req-{i}" for i in range(2000)]


def test_a_full_queue_drops_and_counts_instead_of_growing(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    dropped: list[int] = []
    log = PredictionLog(str(fifo), STATIC, flush_seconds=0.01, max_rows=10, on_drop=dropped.append)
    log.start()
    for i in range(8):
        log.submit(entry(i, rows=2))
    assert sum(dropped) == 2 * 3  # 5 requests (10 rows) fit; 3 of 2 rows did not
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    log.close()
    reader.join(10)
    assert len(b"".join(received).splitlines()) == 10


def test_write_errors_are_counted_not_raised(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("")
    dropped: list[int] = []
    log = PredictionLog(str(blocked / "p.jsonl"), STATIC, on_drop=dropped.append)
    log.start()
    log.submit(entry(1, rows=4))
    log.close()
    assert dropped == [4]


def test_strings_orjson_cannot_encode_still_give_valid_lines(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path / "p.jsonl"), STATIC)
    log.start()
    log.submit(Entry("r", 0.0, "/predict", [{"Home": "caf\udce9"}], [0.1], ["negative"]))
    log.close()
    (line,) = read_lines(tmp_path / "p.jsonl")
    assert line["features"] == {"Home": "caf\udce9"}
