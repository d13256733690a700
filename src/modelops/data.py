"""Reading the raw table and the split files with the types params.yaml declares."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from modelops.config import DataParams, SplitParams
from modelops.errors import DataError


def read_raw(path: str | Path) -> pd.DataFrame:
    """Read a CSV as strings-or-numbers, failing clearly on a missing or empty file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; check data.path in params.yaml")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty; it needs a header row and data rows")
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError as error:
        raise DataError(f"{path}: no columns to read ({error})") from error
    except pd.errors.ParserError as error:
        raise DataError(f"{path}: not a well-formed CSV ({error})") from error


def coerce_features(frame: pd.DataFrame, data: DataParams) -> pd.DataFrame:
    """Return the feature columns with model dtypes: float64 numerics, object categoricals."""
    out = pd.DataFrame(index=frame.index)
    for column in data.numeric_features:
        out[column] = frame[column].astype("float64")
    for column in data.categorical_features:
        values = frame[column].astype("object")
        out[column] = values.where(values.notna(), None)
    return out


def labels(frame: pd.DataFrame, data: DataParams) -> np.ndarray:
    """1 where the target equals the positive class, else 0."""
    return (frame[data.target].astype(str) == str(data.positive_class)).to_numpy(dtype=np.int64)


def split(
    frame: pd.DataFrame, data: DataParams, params: SplitParams
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified, seeded train/test split of the whole table."""
    train, test = train_test_split(
        frame,
        test_size=params.test_size,
        random_state=params.seed,
        stratify=frame[data.target],
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)


def write_split(train: pd.DataFrame, test: pd.DataFrame, out_dir: str | Path) -> None:
    """Write train.parquet and test.parquet (types survive, unlike CSV)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train.to_parquet(out_dir / "train.parquet", index=False)
    test.to_parquet(out_dir / "test.parquet", index=False)


def read_split(path: str | Path) -> pd.DataFrame:
    """Read one split file written by `write_split`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: not found; run `dvc repro split` first")
    return pd.read_parquet(path)
