"""Rows to check for drift: the service's prediction logs (JSON lines) or any CSV/parquet table.

Prediction logs are read by monitor/predlogs.py (line format, damaged-line policy). A table
holds one column per feature and, optionally, a `score` column. A folder is read as every
*.jsonl / *.csv / *.parquet file in it and below, in path order: the service's day partitions
(`date=YYYY-MM-DD/predictions-<host>.jsonl`), the same tree copied from the log bucket (with
an environment prefix or not), or flat files. Columns the service redacted
(`serve.log_redact`: dropped or hashed) are listed in `CurrentData.redacted`, and the checks
skip them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from modelops.errors import DataError
from modelops.monitor.predlogs import LOG_SUFFIXES, SCORE_COLUMN, log_files, read_log_file

TABLE_SUFFIXES = (".csv", ".parquet")


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
    """The logs and tables at `path` (a file, or every one below a folder), or a DataError."""
    if path.is_dir():
        found = log_files(path, LOG_SUFFIXES + TABLE_SUFFIXES)
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
            parts.append(read_log_file(file, notes, redacted))
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
