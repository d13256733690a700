"""Production labels fed back into the data source as a labeled batch.

`modelops feedback --logs L --labels F` reads the prediction logs (monitor/predlogs.py) and the
labels, joins them (monitor/labels.py: every label and prediction counted; unmatched labels
can be kept in a file to retry later), and writes the labeled rows as one batch into the data
source (`source.url`), where the next retrain picks it up. This module holds what is specific
to that batch: its columns, its name and the write.
"""

from __future__ import annotations

import io
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from modelops.config import DataParams
from modelops.errors import DataError
from modelops.monitor.labels import KEY, LABEL, LABELED_AT, Feedback

LINEAGE = [*KEY, LABELED_AT, "model_version", "score"]


def labeled_batch(feedback: Feedback, data: DataParams) -> pd.DataFrame:
    """The joined rows as a source batch: the features, the label as the target, lineage."""
    batch = feedback.frame.rename(columns={LABEL: data.target})
    columns = [c for c in [*data.features, data.target, *LINEAGE] if c in batch.columns]
    return batch[columns].reset_index(drop=True)


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
