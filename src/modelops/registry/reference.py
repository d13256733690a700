"""Reference distributions saved with the model: what serving and drift checks compare to.

Numeric features get quantile bins from the training data; bin i holds values in
(edges[i-1], edges[i]], with open ends. Categorical features get category shares.
Missing values have their own bin; unseen categories fall in OTHER at serving time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the service image has no pandas; only training passes DataFrames here
    import pandas as pd

MISSING = "__missing__"
OTHER = "__other__"
REFERENCE_FILE = "reference.json"


def quantile_edges(values: np.ndarray, bins: int) -> list[float]:
    """Inner bin edges at the training quantiles, de-duplicated."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return []
    return [float(e) for e in np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1]))]


def bin_labels(edges: list[float]) -> list[str]:
    """Labels of the len(edges)+1 numeric bins, then the missing bin."""
    return [str(i) for i in range(len(edges) + 1)] + [MISSING]


def numeric_bin_index(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """Bin index per value; NaN maps to len(edges)+1 (the missing bin)."""
    index = np.searchsorted(np.asarray(edges, dtype=float), values, side="left")
    return np.where(np.isnan(values), len(edges) + 1, index)


def numeric_reference(values: np.ndarray, bins: int) -> dict[str, Any]:
    edges = quantile_edges(values, bins)
    counts = np.bincount(numeric_bin_index(values, edges), minlength=len(edges) + 2)
    shares = counts / max(len(values), 1)
    return {
        "type": "numeric",
        "edges": edges,
        "proportions": dict(zip(bin_labels(edges), shares.round(6).tolist(), strict=True)),
    }


def categorical_reference(values: pd.Series) -> dict[str, Any]:
    shares = values.astype("object").fillna(MISSING).astype(str).value_counts(normalize=True)
    proportions = {str(k): round(float(v), 6) for k, v in shares.sort_index().items()}
    proportions.setdefault(MISSING, 0.0)
    proportions.setdefault(OTHER, 0.0)
    return {"type": "categorical", "proportions": proportions}


def build_reference(
    features: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    scores: np.ndarray,
    bins: int,
) -> dict[str, Any]:
    """Reference for every feature and for the model's score on the training data."""
    return {
        "features": {
            **{c: numeric_reference(features[c].to_numpy(dtype=float), bins) for c in numeric},
            **{c: categorical_reference(features[c]) for c in categorical},
        },
        "score": numeric_reference(np.asarray(scores, dtype=float), bins),
        "rows": len(features),
    }
