"""The prediction log: one JSON line per scored row in day partitions, sampled, written off
the request path, nothing queued lost at close, a stuck or failing disk never reaches the
requests; redacted columns are dropped or keyed-hashed before a line exists; a file-like
log setting is refused."""

from __future__ import annotations

import json
import os
import random
import threading
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from modelops.registry.log_policy import LogRedaction
from serving.model import ModelLoadError
from serving.predlog import Entry, PredictionLog, partition_file
from serving.redact import Redactor, build_redactor
from serving.settings import ServeSettings

STATIC = {"model_name": "credit-scoring", "model_version": "7", "environment": "test"}
DAY = "2027-01-15"  # the UTC day of entry()'s timestamp
HOST = "pod-1"


def day_file(folder: Path, day: str = DAY) -> Path:
    return partition_file(folder, day, HOST)


def fifo_at(folder: Path) -> Path:
    """A FIFO where the log's file for DAY goes: the writer blocks until a reader comes."""
    path = day_file(folder)
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    return path


def entry(i: int, rows: int = 1) -> Entry:
    records = [{"Age": float(i), "Home": "owner" if r % 2 else None} for r in range(rows)]
    scores = [0.25 + 0.5 * (r % 2) for r in range(rows)]
    decisions = ["positive" if s >= 0.5 else "negative" for s in scores]
    return Entry(f"req-{i}", 1_800_000_000.5, "/predict", records, scores, decisions)


def read_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_one_line_per_row_with_what_monitoring_needs(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path / "logs"), STATIC, flush_seconds=60, host=HOST)
    log.start()
    log.submit(entry(1, rows=3))
    log.submit(entry(2))
    log.close()  # the flush interval never elapsed: close() alone must write everything
    lines = read_lines(tmp_path / "logs" / f"date={DAY}" / f"predictions-{HOST}.jsonl")
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
    log = PredictionLog(str(tmp_path), STATIC, sample_rate=0.25, host=HOST)
    log.start()
    for i in range(2000):
        log.submit(entry(i, rows=2))
    log.close()
    lines = read_lines(day_file(tmp_path))
    requests = {x["request_id"] for x in lines}
    assert 400 <= len(requests) <= 600
    assert len(lines) == 2 * len(requests)  # a sampled request is logged whole


def test_rate_zero_or_no_target_writes_nothing(tmp_path: Path) -> None:
    for target, rate in ((str(tmp_path / "a"), 0.0), ("", 1.0)):
        log = PredictionLog(target, STATIC, sample_rate=rate)
        log.start()
        log.submit(entry(1))
        log.close()
    assert list(tmp_path.iterdir()) == []


def test_a_stuck_writer_never_blocks_submit(tmp_path: Path) -> None:
    """The log target is a FIFO nobody reads yet: the writer thread blocks in open(); the
    request path must not notice, and every line arrives once a reader shows up."""
    fifo = fifo_at(tmp_path)
    log = PredictionLog(str(tmp_path), STATIC, flush_seconds=0.01, host=HOST)
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
    fifo = fifo_at(tmp_path)
    dropped: list[int] = []
    log = PredictionLog(
        str(tmp_path), STATIC, flush_seconds=0.01, max_rows=10, on_drop=dropped.append, host=HOST
    )
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
    log = PredictionLog(str(blocked / "logs"), STATIC, on_drop=dropped.append)
    log.start()
    log.submit(entry(1, rows=4))
    log.close()
    assert dropped == [4]


def test_strings_orjson_cannot_encode_still_give_valid_lines(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path), STATIC, host=HOST)
    log.start()
    log.submit(Entry("r", 0.0, "/predict", [{"Home": "caf\udce9"}], [0.1], ["negative"]))
    log.close()
    (line,) = read_lines(day_file(tmp_path, "1970-01-01"))
    assert line["features"] == {"Home": "caf\udce9"}


def test_lines_go_to_the_partition_of_their_utc_day(tmp_path: Path) -> None:
    """Around midnight UTC one flush holds two days: each line lands in its own day."""
    log = PredictionLog(str(tmp_path), STATIC, flush_seconds=60, host=HOST)
    log.start()
    for i, stamp in enumerate((1_800_057_599.9, 1_800_057_600.0, 1_800_057_599.5)):
        log.submit(Entry(f"req-{i}", stamp, "/predict", [{"Age": 1.0}], [0.1], ["negative"]))
    log.close()
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.jsonl"))
    assert files == [
        f"date=2027-01-15/predictions-{HOST}.jsonl",
        f"date=2027-01-16/predictions-{HOST}.jsonl",
    ]
    assert [x["request_id"] for x in read_lines(day_file(tmp_path))] == ["req-0", "req-2"]
    assert [x["request_id"] for x in read_lines(day_file(tmp_path, "2027-01-16"))] == ["req-1"]


def test_redacted_columns_are_dropped_or_keyed_hashes(tmp_path: Path) -> None:
    policy = LogRedaction(drop=["Age"], hash=["Home"])
    redactor = build_redactor(policy, "s" * 32)
    assert isinstance(redactor, Redactor)
    log = PredictionLog(str(tmp_path), {**STATIC, "redacted": policy.columns}, redact=redactor)
    log.start()
    log.submit(entry(1, rows=2))  # Home: None, then "owner"
    log.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.rglob("*.jsonl"))
    assert b'"Age":' not in raw and b"owner" not in raw  # named only in "redacted"
    lines = [json.loads(x) for x in raw.splitlines()]
    assert [x["features"] for x in lines] == [{"Home": None}, {"Home": redactor.digest("owner")}]
    assert lines[0]["redacted"] == ["Age", "Home"]
    # Same key, same value, same hash (joinable); another key gives another hash.
    other = build_redactor(policy, "t" * 32)
    assert other is not None and other.digest("owner") != redactor.digest("owner")
    assert len(str(redactor.digest("owner"))) == 64


def test_hashing_without_a_salt_is_refused() -> None:
    with pytest.raises(ModelLoadError, match="MODELOPS_LOG_HASH_SALT is not set"):
        build_redactor(LogRedaction(hash=["Home"]), None)
    with pytest.raises(ModelLoadError, match="shorter than 16"):
        build_redactor(LogRedaction(hash=["Home"]), "short")
    assert build_redactor(LogRedaction(drop=["Age"]), None) is not None  # dropping needs none
    assert build_redactor(LogRedaction(), None) is None


def test_a_file_like_log_setting_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="names a file, but the prediction log is a folder"):
        ServeSettings(prediction_log="logs/predictions.jsonl")
    existing = tmp_path / "old-log"
    existing.write_text("")
    with pytest.raises(ValidationError, match="set it to a folder such as"):
        ServeSettings(prediction_log=str(existing))
    for fine in ("-", "", str(tmp_path / "predictions")):
        assert ServeSettings(prediction_log=fine).prediction_log == fine
