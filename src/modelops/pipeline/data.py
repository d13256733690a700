"""Reading the raw table and the split files with the types params.yaml declares."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from modelops.config import DataParams, SplitParams, canonical_label
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
    """Return the feature columns with model dtypes: float64 numerics, object categoricals.

    Every missing categorical (None or NaN) becomes NaN, the one marker the imputer fills, so
    a value missing at training time and one missing at serving time land in the same category.
    """
    out = pd.DataFrame(index=frame.index)
    for column in data.numeric_features:
        out[column] = frame[column].astype("float64")
    for column in data.categorical_features:
        values = frame[column].astype("object")
        out[column] = values.where(values.notna(), np.nan)
    return out


def canonical_labels(values: pd.Series) -> pd.Series:
    """The label column in canonical spelling (`config.canonical_label`): strings, 0/1 and
    booleans alike; missing stays missing (None)."""
    uniques = pd.unique(values.dropna())
    mapping = {value: canonical_label(value) for value in uniques}
    out = values.map(mapping).astype("object")
    return out.where(values.notna(), None)


def labels(frame: pd.DataFrame, data: DataParams) -> np.ndarray:
    """1 where the target equals the positive class (in any spelling: "1", 1, True), else 0."""
    return (canonical_labels(frame[data.target]) == data.positive_class).to_numpy(dtype=np.int64)


def read_table(path: str | Path) -> pd.DataFrame:
    """A CSV (`read_raw`) or a parquet file, by suffix."""
    path = Path(path)
    if path.suffix != ".parquet":
        return read_raw(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; run `dvc repro assemble` first")
    return pd.read_parquet(path)


def test_membership(frame: pd.DataFrame, params: SplitParams) -> np.ndarray:
    """True for rows in the test set, decided per row by a seeded hash of its values.

    Unlike a shuffled split, a row keeps its side when rows are added or removed, so a
    champion trained on an earlier version of the data is never scored on rows it trained
    on, and duplicated rows never straddle the split.
    """
    key = f"{params.seed:016d}"[-16:]
    hashes = pd.util.hash_pandas_object(frame, index=False, hash_key=key).to_numpy()
    return (hashes / np.float64(2**64)) < params.test_size


def split(
    frame: pd.DataFrame, data: DataParams, params: SplitParams
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stable, seeded split; each class lands in test at rate test_size (in expectation)."""
    if frame.empty:
        raise DataError("split: no rows to split; check data.path and the validate report")
    in_test = test_membership(frame, params)
    for value, rows in frame.groupby(frame[data.target].astype(str)):
        if in_test[rows.index].all() or not in_test[rows.index].any():
            raise DataError(
                f"split: class {data.target}={value!r} ({len(rows)} rows) fell entirely on "
                "one side; add data or change split.test_size"
            )
    return (
        frame[~in_test].reset_index(drop=True),
        frame[in_test].reset_index(drop=True),
    )


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
