"""Retention of prediction logs in a file store: delete day partitions past the window.

The service writes `<folder>/date=YYYY-MM-DD/predictions-<host>.jsonl`; a copy of the tree
(per environment, say) keeps the same partition names. `prune` deletes every
`date=YYYY-MM-DD` folder under the log folder whose day is `keep_days` or more days before
today (UTC): with 90, today and the 89 days before it stay. The log bucket's expiration rule
(infra/terraform/modules/prediction-logs) does the same in object storage.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from modelops.errors import DataError

PARTITION = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")


@dataclass
class PruneResult:
    """What `prune` deleted (or would delete), kept, and could not read as a day."""

    cutoff: date
    deleted: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    unreadable: list[Path] = field(default_factory=list)
    dry_run: bool = False

    def summary(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        odd = (
            f"; left {len(self.unreadable)} folder(s) whose name is not a date: "
            + ", ".join(str(p) for p in self.unreadable)
            if self.unreadable
            else ""
        )
        return (
            f"{verb} {len(self.deleted)} day partition(s) before {self.cutoff.isoformat()}, "
            f"kept {len(self.kept)}{odd}"
        )


def partitions(log_dir: Path) -> list[Path]:
    """Every `date=...` folder under `log_dir`, in path order (not inside another one)."""
    return sorted(p for p in log_dir.rglob("date=*") if p.is_dir())


def prune(
    log_dir: Path, keep_days: int, today: date | None = None, dry_run: bool = False
) -> PruneResult:
    """Delete the day partitions older than the window; `dry_run` only lists them."""
    if keep_days < 1:
        raise DataError(f"--keep-days {keep_days}: keep at least 1 day (today's partition)")
    if not log_dir.is_dir():
        raise DataError(f"{log_dir}: not a folder; pass the service's MODELOPS_PREDICTION_LOG")
    today = today or datetime.now(UTC).date()
    result = PruneResult(cutoff=today - timedelta(days=keep_days - 1), dry_run=dry_run)
    for folder in partitions(log_dir):
        match = PARTITION.match(folder.name)
        try:
            day = date.fromisoformat(match.group(1)) if match else None
        except ValueError:
            day = None
        if day is None:
            result.unreadable.append(folder)
        elif day < result.cutoff:
            result.deleted.append(folder)
        else:
            result.kept.append(folder)
    if not dry_run:
        for folder in result.deleted:
            shutil.rmtree(folder)
    return result
