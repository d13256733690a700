"""`modelops logs prune`: day partitions older than the window go, today's window stays,
--dry-run deletes nothing, and a folder that is not a day is never touched."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from modelops.errors import DataError
from modelops.monitor.retention import prune
from serving.predlog import Entry, PredictionLog

MODELOPS = Path(sys.executable).with_name("modelops")


def write_days(folder: Path, days: list[date], host: str) -> None:
    """Real service log lines, one request at noon UTC of each day."""
    log = PredictionLog(str(folder), {"environment": "test"}, host=host)
    log.start()
    for i, day in enumerate(days):
        stamp = datetime(day.year, day.month, day.day, 12, tzinfo=UTC).timestamp()
        log.submit(Entry(f"r{i}", stamp, "/predict", [{"Age": 30.0}], [0.2], ["negative"]))
    log.close()


def modelops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(MODELOPS), *args], capture_output=True, text=True, timeout=120)


def test_old_partitions_are_pruned_and_dry_run_deletes_nothing(tmp_path: Path) -> None:
    today = datetime.now(UTC).date()
    ages = [0, 1, 89, 90, 91, 400]
    logs = tmp_path / "logs"
    write_days(logs / "production", [today - timedelta(days=a) for a in ages], "pod-a")
    write_days(logs / "staging", [today - timedelta(days=95)], "pod-b")
    (logs / "date=not-a-day").mkdir()
    before = sorted(p.relative_to(logs).as_posix() for p in logs.rglob("*.jsonl"))
    assert len(before) == 7

    dry = modelops("logs", "prune", "--log-dir", str(logs), "--keep-days", "90", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert sorted(p.relative_to(logs).as_posix() for p in logs.rglob("*.jsonl")) == before
    assert "would delete 4 day partition(s)" in dry.stdout

    done = modelops("logs", "prune", "--log-dir", str(logs))  # default: monitor.retention_days
    assert done.returncode == 0, done.stderr
    left = sorted(p.parent.name for p in logs.rglob("*.jsonl"))
    kept = sorted(f"date={(today - timedelta(days=a)).isoformat()}" for a in ages[:3])
    assert left == kept  # today and the 89 days before it: 90 days
    assert (logs / "date=not-a-day").is_dir()
    assert "deleted 4 day partition(s)" in done.stdout and "not a date" in done.stdout


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="keep at least 1 day"):
        prune(tmp_path, 0)
    with pytest.raises(DataError, match="not a folder"):
        prune(tmp_path / "missing", 90)
    done = modelops("logs", "prune", "--log-dir", str(tmp_path / "missing"), "--keep-days", "9")
    assert done.returncode == 1 and "not a folder" in done.stderr
