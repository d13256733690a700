"""Rows to check for drift: the service's prediction logs (JSON lines) or any CSV/parquet table.

A prediction log line is one JSON object per prediction:
{"request_id", "row", "timestamp", "model_version", "environment", "track", "features":
{...}, "score", "decision", "redacted": [...]}. A table holds one column per feature and,
optionally, a `score` column. A folder is read as every *.jsonl / *.csv / *.parquet file in
it and below, in path order: the service's day partitions (`date=YYYY-MM-DD/predictions-
<host>.jsonl`), the same tree copied from the log bucket (with an environment prefix or not),
or flat files. Columns the service redacted (`serve.log_redact`: dropped or hashed) are
listed in `CurrentData.redacted`, and the checks skip them.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from modelops.errors import DataError

LOG_SUFFIXES = (".jsonl", ".ndjson", ".log")
TABLE_SUFFIXES = (".csv", ".parquet")
SCORE_COLUMN = "score"
LOG_FIELDS = ("request_id", "row", "timestamp", "environment", "track", "model_version")


@dataclass
class CurrentData:
    """The rows to judge, their served scores when known, and where they came from."""

    frame: pd.DataFrame
    scores: np.ndarray | None
    files: list[str]
    model_versions: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    redacted: list[str] = field(default_factory=list)


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        found = sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and p.suffix in LOG_SUFFIXES + TABLE_SUFFIXES
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        if not found:
            raise DataError(
                f"{path}: folder holds no *.jsonl, *.csv or *.parquet file; point --data at "
                "the prediction logs or a table"
            )
        return found
    if not path.is_file():
        raise DataError(
            f"{path}: not found; pass a prediction log, a CSV/parquet table or a folder"
        )
    if path.suffix not in LOG_SUFFIXES + TABLE_SUFFIXES:
        raise DataError(
            f"{path}: unknown format {path.suffix!r}; use JSON lines (.jsonl), .csv or .parquet"
        )
    return [path]


def _log_rows(path: Path, notes: list[str], redacted: set[str]) -> list[dict[str, object]]:
    """Parse one JSON-lines log; a truncated last line (a crash mid-write) is skipped, noted.
    The columns lines say were redacted are added to `redacted`."""
    rows: list[dict[str, object]] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                if not line.endswith("\n") and not handle.read(1):
                    notes.append(f"{path}:{number}: incomplete last line skipped")
                    break
                raise DataError(
                    f"{path}:{number}: not valid JSON ({error.msg}); fix or remove the line"
                ) from error
            rows.append(_log_row(record, path, number))
            if record.get("redacted"):
                redacted.update(map(str, record["redacted"]))
    return rows


def _log_row(record: object, path: Path, number: int) -> dict[str, object]:
    if not isinstance(record, dict) or not isinstance(record.get("features"), dict):
        raise DataError(
            f"{path}:{number}: no 'features' object; each line must be one prediction as "
            "the service logs it"
        )
    row: dict[str, object] = dict(record["features"])
    row[SCORE_COLUMN] = record.get("score")
    for name in LOG_FIELDS:
        row[name] = record.get(name)
    return row


def read_logs(path: Path) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Every prediction-log line under `path` (file or folder): the frame (features, score
    and the LOG_FIELDS), the files read, and notes."""
    notes: list[str] = []
    files = [f for f in _files(path) if f.suffix in LOG_SUFFIXES]
    if not files:
        raise DataError(f"{path}: no prediction log (*.jsonl) here; point at the service's logs")
    parts = [pd.DataFrame(_log_rows(file, notes, set())) for file in files]
    return pd.concat(parts, ignore_index=True), [str(f) for f in files], notes


def read_table(path: Path) -> pd.DataFrame:
    """A CSV or parquet table, failing clearly on a missing or unreadable file."""
    if path.suffix == ".parquet":
        try:
            return pd.read_parquet(path)
        except (OSError, ValueError) as error:
            raise DataError(f"{path}: not a readable parquet file ({error})") from error
    from modelops.pipeline.data import read_raw

    return read_raw(path)


def read_current(
    path: Path, model_version: str | None = None, environment: str | None = None
) -> CurrentData:
    """Read logs or tables into one frame; keep only `model_version`'s lines when given,
    and drop the lines logged by another environment than `environment` when given."""
    notes: list[str] = []
    parts: list[pd.DataFrame] = []
    redacted: set[str] = set()
    files = _files(path)
    for file in files:
        if file.suffix in LOG_SUFFIXES:
            parts.append(pd.DataFrame(_log_rows(file, notes, redacted)))
        else:
            parts.append(read_table(file))
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if environment is not None and "environment" in frame.columns:
        other = frame["environment"].notna() & (frame["environment"].astype(str) != environment)
        if other.any():
            frame = frame[~other].reset_index(drop=True)
            notes.append(f"left out {int(other.sum())} rows logged by other environments")
    versions: dict[str, int] = {}
    if "model_version" in frame.columns:
        versions = dict(Counter(str(v) for v in frame["model_version"].dropna()))
        if model_version is not None:
            frame = frame[frame["model_version"].astype(str) == model_version]
            frame = frame.reset_index(drop=True)
            notes.append(f"kept the {len(frame)} rows of model version {model_version}")
    elif model_version is not None:
        raise DataError(
            f"{path}: no model_version field to filter on; drop --model-version or pass "
            "prediction logs"
        )
    scores = None
    if SCORE_COLUMN in frame.columns and frame[SCORE_COLUMN].notna().all() and len(frame):
        scores = pd.to_numeric(frame[SCORE_COLUMN], errors="coerce").to_numpy(dtype=float)
        if np.isnan(scores).any() or ((scores < 0) | (scores > 1)).any():
            raise DataError(f"{path}: the score column holds values that are not in [0, 1]")
    return CurrentData(frame, scores, [str(f) for f in files], versions, notes, sorted(redacted))
