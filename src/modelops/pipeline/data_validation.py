"""Data validation: schema, labels, missing values, ranges, duplicates, size, balance."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
from pandas.api import types as ptypes

from modelops.config import DataParams, DataValidationParams
from modelops.pipeline.data import canonical_labels


@dataclass
class Check:
    """One named check with its verdict and the figure it was judged on."""

    name: str
    passed: bool
    message: str
    column: str | None = None
    value: Any = None


@dataclass
class ValidationReport:
    rows: int
    columns: list[str]
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "rows": self.rows,
            "columns": self.columns,
            "failures": [c.message for c in self.failures],
            "checks": [asdict(c) for c in self.checks],
        }


def _is_numeric(series: pd.Series) -> bool:
    return ptypes.is_numeric_dtype(series) and not ptypes.is_bool_dtype(series)


def validate_frame(
    frame: pd.DataFrame, data: DataParams, rules: DataValidationParams
) -> ValidationReport:
    """Run every check; never raises on bad data, the report carries the verdicts."""
    report = ValidationReport(rows=len(frame), columns=list(frame.columns))
    add = report.checks.append

    expected = [data.target, *data.features]
    missing = [c for c in expected if c not in frame.columns]
    for column in missing:
        add(
            Check(
                "schema.column_present",
                False,
                f"column {column!r}: missing from the data (expected by params.yaml data section)",
                column,
            )
        )
    if data.target in missing:
        return report

    add(
        Check(
            "rows.minimum",
            len(frame) >= rules.min_rows,
            f"rows: {len(frame)} found, at least {rules.min_rows} required "
            "(data_validation.min_rows)",
            value=len(frame),
        )
    )
    if frame.empty:
        return report

    target = frame[data.target]
    n_missing_labels = int(target.isna().sum())
    add(
        Check(
            "label.no_missing",
            n_missing_labels == 0,
            f"column {data.target!r}: {n_missing_labels} missing label value(s); "
            "drop or fill those rows",
            data.target,
            n_missing_labels,
        )
    )
    canonical = canonical_labels(target)
    observed = sorted(str(v) for v in canonical.dropna().unique())
    add(
        Check(
            "label.positive_present",
            str(data.positive_class) in observed,
            f"column {data.target!r}: positive class {data.positive_class!r} not among "
            f"the labels {observed} (data.positive_class)",
            data.target,
            observed,
        )
    )
    add(
        Check(
            "label.binary",
            len(observed) == 2,
            f"column {data.target!r}: needs exactly 2 label values, found {len(observed)}: "
            f"{observed}",
            data.target,
            observed,
        )
    )
    if len(observed) >= 1:
        minority = float(canonical.dropna().value_counts(normalize=True).min())
        minority = minority if len(observed) > 1 else 0.0
        add(
            Check(
                "label.class_balance",
                minority >= rules.min_minority_rate,
                f"column {data.target!r}: minority class share {minority:.3f} below "
                f"{rules.min_minority_rate} (data_validation.min_minority_rate)",
                data.target,
                round(minority, 4),
            )
        )

    for column in (c for c in data.numeric_features if c in frame.columns):
        series = frame[column]
        ok = _is_numeric(series)
        add(
            Check(
                "schema.numeric_type",
                ok,
                f"column {column!r}: expected numbers, found dtype {series.dtype} "
                f"(e.g. {series.dropna().astype(str).head(3).tolist()})",
                column,
                str(series.dtype),
            )
        )
        if ok and column in rules.ranges:
            low, high = rules.ranges[column]
            outside = int(((series < low) | (series > high)).sum())
            add(
                Check(
                    "values.range",
                    outside == 0,
                    f"column {column!r}: {outside} value(s) outside [{low}, {high}] "
                    "(data_validation.ranges)",
                    column,
                    outside,
                )
            )
    for column in (c for c in data.categorical_features if c in frame.columns):
        series = frame[column]
        ok = not ptypes.is_float_dtype(series)
        add(
            Check(
                "schema.categorical_type",
                ok,
                f"column {column!r}: expected categories, found continuous dtype {series.dtype}",
                column,
                str(series.dtype),
            )
        )

    for column in (c for c in data.features if c in frame.columns):
        rate = float(frame[column].isna().mean())
        add(
            Check(
                "values.missing_rate",
                rate <= rules.max_missing_rate,
                f"column {column!r}: {rate:.1%} missing, above {rules.max_missing_rate:.0%} "
                "(data_validation.max_missing_rate)",
                column,
                round(rate, 4),
            )
        )

    duplicate_rate = float(frame.duplicated().mean())
    add(
        Check(
            "rows.duplicates",
            duplicate_rate <= rules.max_duplicate_rate,
            f"rows: {duplicate_rate:.1%} fully duplicated, above {rules.max_duplicate_rate:.0%} "
            "(data_validation.max_duplicate_rate)",
            value=round(duplicate_rate, 4),
        )
    )
    return report


# Checks that judge a whole table, not one batch of it: a batch may be small or one-class.
TABLE_CHECKS = {"rows.minimum", "label.positive_present", "label.binary", "label.class_balance"}


def validate_batch(
    frame: pd.DataFrame,
    data: DataParams,
    rules: DataValidationParams,
    known_labels: list[str],
) -> list[Check]:
    """The failed checks of one source batch: schema, types, ranges, missing values, and labels
    outside `known_labels` (the base table's, canonical). Empty when the batch is usable."""
    report = validate_frame(frame, data, rules)
    failures = [c for c in report.checks if not c.passed and c.name not in TABLE_CHECKS]
    if frame.empty:
        failures.append(Check("rows.minimum", False, "rows: the batch holds no data rows"))
    if data.target in frame.columns:
        observed = canonical_labels(frame[data.target]).dropna()
        unknown = sorted(set(observed.unique()) - set(known_labels))
        if unknown:
            count = int(observed.isin(unknown).sum())
            failures.append(
                Check(
                    "label.known",
                    False,
                    f"column {data.target!r}: {count} label(s) {unknown} are not among the "
                    f"base data's labels {known_labels} (data.positive_class and the other one)",
                    data.target,
                    unknown,
                )
            )
    return failures
