"""Data drift of current rows against the training reference: PSI, KS and chi-squared.

PSI is computed on the reference's own bins (quantile bins for numeric features, category
shares for categorical ones, deciles of the training scores for the score), exactly as the
Prometheus recording rules compute it from the service's bin counters:

    PSI = sum over bins of (p' - q') * ln(p' / q'),  p' = max(p, eps), q' = max(q, eps)

with p the current share and q the reference share of a bin. PSI says how much a
distribution moved; a two-sample test says whether the move is more than sampling noise:
KS for numeric columns (exact on raw values when the training rows are given, otherwise on
the reference's quantile grid, which is conservative), chi-squared for categorical ones.
A column drifts when PSI reaches `psi_alert` and its test is significant at `alpha`
(Bonferroni-corrected over the columns tested unless `correction: none`); it warns when PSI
reaches `psi_warning`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from modelops.config import DataParams, DriftParams
from modelops.errors import DataError
from modelops.registry.reference import MISSING, OTHER, bin_labels, numeric_bin_index

Status = Literal["ok", "warning", "drift"]
Verdict = Literal["ok", "warning", "drift", "inconclusive"]
SCORE = "__score__"
_RANK: dict[str, int] = {"ok": 0, "warning": 1, "drift": 2}


def psi(current: np.ndarray, reference: np.ndarray, epsilon: float) -> float:
    """Population stability index of two share vectors over the same bins."""
    p = np.maximum(np.asarray(current, dtype=float), epsilon)
    q = np.maximum(np.asarray(reference, dtype=float), epsilon)
    return float(np.sum((p - q) * np.log(p / q)))


def numeric_values(values: pd.Series, column: str) -> np.ndarray:
    """Float values of a numeric column; text that is not a number is a DataError."""
    parsed = pd.to_numeric(values, errors="coerce")
    bad = values.notna() & parsed.isna()
    if bad.any():
        examples = ", ".join(repr(v) for v in values[bad].unique()[:3])
        raise DataError(
            f"column {column!r}: {int(bad.sum())} value(s) are not numbers (e.g. {examples}); "
            "fix the rows or declare the column under categorical_features in params.yaml"
        )
    return parsed.to_numpy(dtype=float)


def category_labels(values: pd.Series) -> np.ndarray:
    """Category names as the service labels them: text, with missing values as MISSING."""
    return values.astype("object").where(values.notna(), MISSING).astype(str).to_numpy()


def bin_counts(
    values: pd.Series, spec: dict[str, Any], column: str
) -> tuple[list[str], np.ndarray]:
    """Counts of `values` in the bins of one reference entry, with the bin labels in order."""
    if spec["type"] == "numeric":
        edges = list(spec["edges"])
        index = numeric_bin_index(numeric_values(values, column), edges)
        return bin_labels(edges), np.bincount(index, minlength=len(edges) + 2)
    labels = list(spec["proportions"])
    for extra in (MISSING, OTHER):
        if extra not in labels:
            labels.append(extra)
    position = {label: i for i, label in enumerate(labels)}
    other = position[OTHER]
    index = np.array([position.get(v, other) for v in category_labels(values)], dtype=int)
    return labels, np.bincount(index, minlength=len(labels))


def reference_shares(spec: dict[str, Any], labels: list[str]) -> np.ndarray:
    proportions = spec["proportions"]
    return np.array([float(proportions.get(label, 0.0)) for label in labels])


def ks_on_grid(
    current: np.ndarray, reference: np.ndarray, reference_rows: float
) -> tuple[float, float]:
    """Two-sample KS statistic and asymptotic p-value from counts/shares on the quantile grid.

    The last entry of both vectors is the missing bin, which KS ignores. Evaluating the two
    empirical CDFs only at the reference edges can only lower the statistic, so the test is
    conservative (it never signals more often than the exact KS test would).
    """
    cur, ref = np.asarray(current[:-1], dtype=float), np.asarray(reference[:-1], dtype=float)
    n, m = cur.sum(), ref.sum() * reference_rows
    if n == 0 or m == 0 or ref.sum() == 0:
        return 0.0, 1.0
    statistic = float(np.max(np.abs(np.cumsum(cur) / n - np.cumsum(ref) / ref.sum())))
    effective = max(round(n * m / (n + m)), 1)
    return statistic, float(stats.kstwo.sf(statistic, effective))


def ks_exact(current: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """Two-sample KS test on raw values, missing values left out."""
    cur, ref = current[~np.isnan(current)], reference[~np.isnan(reference)]
    if cur.size == 0 or ref.size == 0:
        return 0.0, 1.0
    result = stats.ks_2samp(cur, ref)
    return float(result.statistic), float(result.pvalue)


def chi2_two_sample(current: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """Chi-squared test of homogeneity of two count vectors over the same categories."""
    table = np.vstack([np.asarray(current, dtype=float), np.asarray(reference, dtype=float)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


def check_columns(
    frame: pd.DataFrame, data: DataParams, source: str, skip: list[str] | None = None
) -> None:
    """Every feature (but `skip`: redacted in the logs) is present and every numeric feature
    holds numbers, or a DataError."""
    skipped = set(skip or [])
    absent = [f for f in data.features if f not in frame.columns and f not in skipped]
    if absent:
        raise DataError(
            f"{source}: no column(s) {absent} (it has {sorted(map(str, frame.columns))}); "
            "pass prediction logs or a table with every feature the model uses"
        )
    for column in data.numeric_features:
        if column not in skipped:
            numeric_values(frame[column], column)


@dataclass(frozen=True)
class ColumnDrift:
    """One feature (or the score) compared with its reference."""

    name: str
    kind: Literal["numeric", "categorical"]
    rows: int
    psi: float
    test: Literal["ks", "ks_grid", "chi2"]
    statistic: float
    p_value: float
    significant: bool
    status: Status
    bins: list[str]
    reference_share: list[float]
    current_share: list[float]
    edges: list[float] | None = None


@dataclass
class DriftReport:
    """Every column's comparison and the overall verdict, as written to drift.json."""

    verdict: Verdict
    rows: int
    min_rows: int
    psi_warning: float
    psi_alert: float
    alpha: float
    alpha_per_test: float
    columns: list[ColumnDrift]
    drifted: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sources: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def empty(cls, params: DriftParams, notes: list[str]) -> DriftReport:
        """The report on zero rows: inconclusive."""
        return _judge(0, [], params, params.alpha, notes)

    def column(self, name: str) -> ColumnDrift:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _status(value: float, significant: bool, params: DriftParams) -> Status:
    if value >= params.psi_alert and significant:
        return "drift"
    if value >= params.psi_warning:
        return "warning"
    return "ok"


def compare_column(
    name: str,
    current: pd.Series,
    spec: dict[str, Any],
    reference_rows: int,
    params: DriftParams,
    alpha_per_test: float,
    reference_values: pd.Series | None = None,
) -> ColumnDrift:
    """PSI and the two-sample test of one column against its reference entry."""
    labels, counts = bin_counts(current, spec, name)
    q = reference_shares(spec, labels)
    rows = int(counts.sum())
    p = counts / rows if rows else np.zeros_like(q)
    value = psi(p, q, params.epsilon)
    test: Literal["ks", "ks_grid", "chi2"]
    if spec["type"] == "numeric":
        if reference_values is not None:
            test = "ks"
            statistic, p_value = ks_exact(
                numeric_values(current, name), numeric_values(reference_values, name)
            )
        else:
            test = "ks_grid"
            statistic, p_value = ks_on_grid(counts, q, reference_rows)
    else:
        test = "chi2"
        if reference_values is not None:
            _, reference_counts = bin_counts(reference_values, spec, name)
        else:
            reference_counts = np.round(q * reference_rows)
        statistic, p_value = chi2_two_sample(counts, reference_counts)
    significant = p_value < alpha_per_test
    return ColumnDrift(
        name=name,
        kind=spec["type"],
        rows=rows,
        psi=round(value, 6),
        test=test,
        statistic=round(statistic, 6),
        p_value=float(f"{p_value:.6g}"),
        significant=bool(significant),
        status=_status(value, significant, params),
        bins=labels,
        reference_share=[round(float(v), 6) for v in q],
        current_share=[round(float(v), 6) for v in p],
        edges=[float(e) for e in spec["edges"]] if spec["type"] == "numeric" else None,
    )


def compare(
    current: pd.DataFrame,
    reference: dict[str, Any],
    params: DriftParams,
    features: list[str],
    scores: np.ndarray | None = None,
    reference_frame: pd.DataFrame | None = None,
    reference_scores: np.ndarray | None = None,
) -> DriftReport:
    """Compare every feature (and the score, when given and enabled) with the reference."""
    specs = reference.get("features", {})
    missing = [f for f in features if f not in specs]
    if missing:
        raise DataError(
            f"the reference has no entry for feature(s) {missing}; it was saved by a model "
            "trained on other features: use that model's reference or retrain"
        )
    absent = [f for f in features if f not in current.columns]
    if absent:
        raise DataError(f"the data has no column(s) {absent}; pass every feature the model uses")
    judge_score = params.score and scores is not None and "score" in reference
    tested = len(features) + int(judge_score)
    alpha_per_test = params.alpha / tested if params.correction == "bonferroni" else params.alpha
    reference_rows = int(reference.get("rows", 0)) or 1
    columns = [
        compare_column(
            name,
            current[name],
            specs[name],
            reference_rows,
            params,
            alpha_per_test,
            None if reference_frame is None else reference_frame[name],
        )
        for name in features
    ]
    notes = []
    if judge_score and scores is not None:
        columns.append(
            compare_column(
                SCORE,
                pd.Series(scores),
                reference["score"],
                reference_rows,
                params,
                alpha_per_test,
                None if reference_scores is None else pd.Series(reference_scores),
            )
        )
    elif params.score:
        notes.append("score not judged: the data has no scores and no model was given to score it")
    return _judge(len(current), columns, params, alpha_per_test, notes)


def _judge(
    rows: int,
    columns: list[ColumnDrift],
    params: DriftParams,
    alpha_per_test: float,
    notes: list[str],
) -> DriftReport:
    drifted = [c.name for c in columns if c.status == "drift"]
    warned = [c.name for c in columns if c.status == "warning"]
    verdict: Verdict
    if rows < params.min_rows:
        verdict = "inconclusive"
        notes.append(
            f"only {rows} rows, fewer than drift.min_rows={params.min_rows}: nothing is judged; "
            "collect more predictions or widen the time range"
        )
    else:
        verdict = "drift" if drifted else "warning" if warned else "ok"
    return DriftReport(
        verdict=verdict,
        rows=rows,
        min_rows=params.min_rows,
        psi_warning=params.psi_warning,
        psi_alert=params.psi_alert,
        alpha=params.alpha,
        alpha_per_test=alpha_per_test,
        columns=sorted(columns, key=lambda c: (-_RANK[c.status], -c.psi)),
        drifted=drifted,
        warnings=warned,
        notes=notes,
    )
