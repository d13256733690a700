"""Production labels fed back: prediction logs joined with labels that arrived later.

`modelops feedback --logs L --labels F` reads the service's prediction logs (one JSON line per
scored row with `request_id`, `row` and `features`; a file, or a folder read recursively, so
day partitions `date=YYYY-MM-DD/*.jsonl` work too) and a CSV/parquet of `request_id, row,
label, labeled_at`, joins them on (request_id, row), and writes the labeled rows as one batch
into the data source (`source.url`), where the next retrain picks it up.

Nothing is dropped silently: labels with no logged prediction are counted (and can be kept in
a file to retry later), duplicate labels for one row are counted (the latest `labeled_at`
wins, and disagreeing duplicates are counted apart), as are predictions logged twice.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from modelops.config import DataParams
from modelops.errors import DataError
from modelops.pipeline.data import canonical_labels

KEY = ["request_id", "row"]
LABEL_COLUMNS = [*KEY, "label", "labeled_at"]
LOG_SUFFIXES = (".jsonl", ".ndjson")


@dataclass
class FeedbackCounts:
    """What the join did with every label and every logged prediction."""

    labels: int  # rows in the labels file
    matched: int  # labeled rows written to the batch
    unmatched_labels: int  # labels whose (request_id, row) no log line has
    duplicate_labels: int  # extra label rows for a (request_id, row) already labeled
    conflicting_labels: int  # of those keys, how many had disagreeing labels
    missing_labels: int  # label rows with an empty label (not written)
    predictions: int  # log lines read
    duplicate_predictions: int  # log lines repeating a (request_id, row) (first one kept)
    unlabeled_predictions: int  # predictions no label has reached yet


@dataclass
class Feedback:
    batch: pd.DataFrame
    counts: FeedbackCounts
    unmatched: pd.DataFrame


def log_files(path: Path) -> list[Path]:
    """The prediction log itself, or every *.jsonl under a folder (recursively), sorted."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"{path}: not found; pass a prediction log file or the logs' folder")
    found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in LOG_SUFFIXES)
    if not found:
        raise DataError(f"{path}: no *.jsonl prediction log under this folder")
    return found


def read_predictions(path: Path) -> tuple[pd.DataFrame, list[Path]]:
    """One row per logged prediction: request_id, row, model_version, score, the features."""
    rows: list[dict[str, Any]] = []
    files = log_files(path)
    for file in files:
        with file.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    if not line.endswith("\n"):
                        break  # a last line cut by a crash mid-write
                    raise DataError(f"{file}:{number}: not valid JSON ({error.msg})") from error
                if not isinstance(record, dict) or not all(k in record for k in KEY):
                    raise DataError(
                        f"{file}:{number}: no request_id/row; is this the service's prediction "
                        "log (serving/predlog.py)?"
                    )
                features = record.get("features")
                if not isinstance(features, dict):
                    raise DataError(f"{file}:{number}: no 'features' object")
                rows.append(
                    {
                        "request_id": str(record["request_id"]),
                        "row": int(record["row"]),
                        "model_version": record.get("model_version"),
                        "score": record.get("score"),
                        **features,
                    }
                )
    return pd.DataFrame(rows), files


def read_labels(path: Path) -> pd.DataFrame:
    """The labels table (CSV or parquet) with columns request_id, row, label, labeled_at."""
    if not path.is_file():
        raise DataError(f"{path}: labels file not found")
    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (ValueError, OSError, pd.errors.ParserError) as error:
        raise DataError(f"{path}: not a readable labels table ({error})") from error
    missing = [c for c in LABEL_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: columns {missing} missing; a labels table has {LABEL_COLUMNS}")
    frame = frame[LABEL_COLUMNS].copy()
    frame["request_id"] = frame["request_id"].astype(str)
    if frame["row"].isna().any():
        raise DataError(f"{path}: {int(frame['row'].isna().sum())} label row(s) without `row`")
    frame["row"] = frame["row"].astype("int64")
    return frame


def join(predictions: pd.DataFrame, labels: pd.DataFrame, data: DataParams) -> Feedback:
    """Labeled rows (features + target + lineage columns) and the counts of everything else."""
    n_predictions = len(predictions)
    if predictions.empty:
        predictions = pd.DataFrame(columns=[*KEY, "model_version", "score"])
    predictions = predictions.drop_duplicates(KEY, keep="first")
    duplicate_predictions = n_predictions - len(predictions)

    labels = labels.assign(label=canonical_labels(labels["label"]))
    missing = labels["label"].isna()
    usable = labels[~missing]
    conflicting = int((usable.groupby(KEY)["label"].nunique() > 1).sum())
    ordered = usable.assign(_at=pd.to_datetime(usable["labeled_at"], utc=True, errors="coerce"))
    latest = ordered.sort_values("_at", kind="stable").drop_duplicates(KEY, keep="last")
    duplicates = len(usable) - len(latest)

    merged = latest.drop(columns="_at").merge(predictions, on=KEY, how="left", indicator=True)
    found = merged["_merge"] == "both"
    unmatched = merged.loc[~found, LABEL_COLUMNS].reset_index(drop=True)
    batch = merged[found].drop(columns="_merge").rename(columns={"label": data.target})
    lineage = [*KEY, "labeled_at", "model_version", "score"]
    columns = [c for c in [*data.features, data.target, *lineage] if c in batch.columns]
    batch = batch[columns].reset_index(drop=True)
    counts = FeedbackCounts(
        labels=len(labels),
        matched=len(batch),
        unmatched_labels=len(unmatched),
        duplicate_labels=duplicates,
        conflicting_labels=conflicting,
        missing_labels=int(missing.sum()),
        predictions=n_predictions,
        duplicate_predictions=duplicate_predictions,
        unlabeled_predictions=len(predictions) - len(batch),
    )
    return Feedback(batch, counts, unmatched)


def batch_name(now: datetime | None = None) -> str:
    """feedback-YYYY-MM-DDTHHMMSSZ.parquet: sorts in arrival order, dated for day windows."""
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H%M%SZ")
    return f"feedback-{stamp}.parquet"


def write_batch(batch: pd.DataFrame, url: str, name: str) -> str:
    """Write the batch into the source (a folder atomically, or a bucket via fsspec)."""
    buffer = io.BytesIO()
    batch.to_parquet(buffer, index=False)
    content = buffer.getvalue()
    if "://" not in url or url.startswith("file://"):
        folder = Path(url.removeprefix("file://"))
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        if target.exists():
            raise DataError(f"{target}: a batch of that name exists; wait a second and rerun")
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=folder)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.replace(tmp, target)
        return str(target)
    import fsspec

    fs, root = fsspec.core.url_to_fs(url)
    target_path = f"{root.rstrip('/')}/{name}"
    fs.pipe_file(target_path, content)
    return f"{url.rstrip('/')}/{name}"


def counts_dict(feedback: Feedback) -> dict[str, Any]:
    """The counts as a plain dict (for JSON and the command's report)."""
    return asdict(feedback.counts)
