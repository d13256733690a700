"""Scoring a batch of records: a fast path compiled from the fitted sklearn pipeline, with
the pipeline itself as the reference and the fallback.

The fast path replays the pipeline's preprocessing (imputation, scaling, one-hot encoding)
with numpy on the validated records, without building a DataFrame, and scores with
  - HistGradientBoostingClassifier: its trees rebuilt as one ONNX TreeEnsembleRegressor with
    double thresholds and leaf values (the op returns the raw score as float32: about 1e-8 on
    the probability), run by onnxruntime on one thread, then the same `expit` sklearn uses;
  - LogisticRegression: the same dot product and `expit` as sklearn, in numpy.
`build_predictor` checks the fast path against `pipeline.predict_proba` on probe rows that
cover every reference bin, every known category, missing values and an unseen category, and
falls back to sklearn (saying why) when they differ by more than TOLERANCE or it cannot
compile the pipeline.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from serving.model import ModelCard

if TYPE_CHECKING:
    import pandas as pd

TOLERANCE = 1e-6
UNSEEN = "__unseen_category_probe__"
log = logging.getLogger("serving.predictor")


class Unsupported(Exception):
    """The fast path cannot replay this pipeline; the message says which part."""


class PredictionError(ValueError):
    """The model refused an input that passed the schema (e.g. a category it cannot encode)."""


@dataclass(frozen=True)
class Batch:
    """Validated records in the model's column order: numerics as float64 with NaN for
    missing, categoricals as lists of str or None (None = missing, as in training)."""

    numeric: np.ndarray
    categorical: list[list[str | None]]

    @property
    def rows(self) -> int:
        return int(self.numeric.shape[0])

    @classmethod
    def from_records(cls, records: list[dict[str, Any]], card: ModelCard) -> Batch:
        numeric_names, categorical_names = card.numeric, card.categorical
        numeric = np.array(
            [[r[f] for f in numeric_names] for r in records], dtype=np.float64
        ).reshape(len(records), len(numeric_names))
        categorical = [[r[f] for r in records] for f in categorical_names]
        return cls(numeric, categorical)

    def frame(self, card: ModelCard) -> pd.DataFrame:
        """The batch as the DataFrame the pipeline was trained on: float64 numerics, object
        categoricals with NaN for a missing value (as pipeline.data.coerce_features gives)."""
        import pandas as pd  # the sklearn path only: the lean image has no pandas

        columns: dict[str, Any] = {}
        numeric = dict(zip(card.numeric, self.numeric.T, strict=True))
        categorical = dict(zip(card.categorical, self.categorical, strict=True))
        for feature in card.features:
            if feature.kind == "numeric":
                columns[feature.name] = pd.Series(numeric[feature.name], dtype="float64")
            else:
                values = [np.nan if v is None else v for v in categorical[feature.name]]
                columns[feature.name] = pd.Series(values, dtype=object)
        return pd.DataFrame(columns)


class Predictor(Protocol):
    kind: str

    def scores(self, batch: Batch) -> np.ndarray:
        """Positive-class probability per row."""
        ...


class SklearnPredictor:
    """The fitted pipeline on a DataFrame: exactly what `mlflow models serve` runs."""

    kind = "sklearn"

    def __init__(self, pipeline: Any, card: ModelCard) -> None:
        self.pipeline, self.card = pipeline, card
        self.positive = _positive_column(pipeline)

    def scores(self, batch: Batch) -> np.ndarray:
        try:
            proba = self.pipeline.predict_proba(batch.frame(self.card))
        except ValueError as error:
            raise PredictionError(f"the model cannot score this input: {error}") from error
        return np.asarray(proba[:, self.positive], dtype=np.float64)


def _positive_column(pipeline: Any) -> int:
    classes = list(getattr(pipeline, "classes_", [0, 1]))
    if len(classes) != 2:
        raise Unsupported(f"the model has {len(classes)} classes; the service scores binary models")
    return 1


# -- preprocessing -------------------------------------------------------------------------


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


@dataclass
class _NumericBlock:
    offset: int
    columns: list[int]  # indexes into Batch.numeric
    fill: np.ndarray
    mean: np.ndarray | None
    scale: np.ndarray | None

    def write(self, x: np.ndarray, batch: Batch) -> None:
        values = batch.numeric[:, self.columns]
        values = np.where(np.isnan(values), self.fill, values)
        if self.mean is not None:
            values = values - self.mean
        if self.scale is not None:
            values = values / self.scale
        x[:, self.offset : self.offset + len(self.columns)] = values


@dataclass
class _CategoricalBlock:
    columns: list[int]  # indexes into Batch.categorical
    lookups: list[dict[Any, int]]  # category -> output column
    fill: list[Any]  # what a missing value becomes (None when no imputer fills it)

    def write(self, x: np.ndarray, batch: Batch) -> None:
        for column, lookup, fill in zip(self.columns, self.lookups, self.fill, strict=True):
            for row, value in enumerate(batch.categorical[column]):
                index = lookup.get(fill if value is None else value, -1)
                if index >= 0:
                    x[row, index] = 1.0


def _steps(transformer: Any) -> list[Any]:
    from sklearn.pipeline import Pipeline

    return [s for _, s in transformer.steps] if isinstance(transformer, Pipeline) else [transformer]


def _numeric_block(steps: list[Any], columns: list[int], offset: int) -> _NumericBlock:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    fill = np.full(len(columns), np.nan)
    mean = scale = None
    for step in steps:
        if isinstance(step, SimpleImputer) and not step.add_indicator:
            if not _is_nan(step.missing_values):
                raise Unsupported("numeric imputer with missing_values other than NaN")
            fill = np.asarray(step.statistics_, dtype=np.float64)
            if np.isnan(fill).any():
                raise Unsupported("numeric imputer that drops all-missing columns")
        elif isinstance(step, StandardScaler) and mean is None and scale is None:
            mean, scale = step.mean_, step.scale_
        else:
            raise Unsupported(f"numeric step {type(step).__name__}")
    return _NumericBlock(offset, columns, fill, mean, scale)


def _categorical_block(steps: list[Any], columns: list[int], offset: int) -> _CategoricalBlock:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder

    if not steps or not isinstance(steps[-1], OneHotEncoder):
        raise Unsupported("categorical columns must end in a OneHotEncoder")
    encoder, imputers = steps[-1], steps[:-1]
    if encoder.handle_unknown != "ignore" or encoder.drop is not None:
        raise Unsupported("OneHotEncoder needs handle_unknown='ignore' and drop=None")
    if any(getattr(encoder, "infrequent_categories_", None) or []):
        raise Unsupported("OneHotEncoder with infrequent categories")
    fill: list[Any] = [None] * len(columns)
    for step in imputers:
        if not isinstance(step, SimpleImputer) or step.add_indicator:
            raise Unsupported(f"categorical step {type(step).__name__}")
        # A missing value reaches the pipeline as NaN (Batch.frame, coerce_features).
        if not _is_nan(step.missing_values):
            raise Unsupported("categorical imputer with missing_values other than NaN")
        fill = list(step.statistics_)
    lookups, position = [], offset
    for categories in encoder.categories_:
        lookups.append({value: position + i for i, value in enumerate(categories)})
        position += len(categories)
    return _CategoricalBlock(columns, lookups, fill)


class _Preprocessor:
    """Replays a fitted ColumnTransformer of numeric and one-hot blocks into a dense matrix."""

    numeric_blocks: list[_NumericBlock]
    categorical_blocks: list[_CategoricalBlock]
    width: int

    @classmethod
    def from_blocks(
        cls, numeric: list[_NumericBlock], categorical: list[_CategoricalBlock], width: int
    ) -> _Preprocessor:
        prep = cls.__new__(cls)
        prep.numeric_blocks, prep.categorical_blocks, prep.width = numeric, categorical, width
        return prep

    def __init__(self, prep: Any, card: ModelCard) -> None:
        from sklearn.compose import ColumnTransformer

        if not isinstance(prep, ColumnTransformer):
            raise Unsupported(f"first step is {type(prep).__name__}, not a ColumnTransformer")
        numeric, categorical = card.numeric, card.categorical
        self.numeric_blocks: list[_NumericBlock] = []
        self.categorical_blocks: list[_CategoricalBlock] = []
        offset = 0
        for name, transformer, columns in prep.transformers_:
            if transformer == "drop" or (name == "remainder" and not len(columns)):
                continue
            columns = list(columns)
            if not all(isinstance(c, str) for c in columns):
                raise Unsupported("columns selected by position")
            steps = _steps(transformer)
            if all(c in numeric for c in columns):
                block = _numeric_block(steps, [numeric.index(c) for c in columns], offset)
                self.numeric_blocks.append(block)
                offset += len(columns)
            elif all(c in categorical for c in columns):
                cblock = _categorical_block(steps, [categorical.index(c) for c in columns], offset)
                self.categorical_blocks.append(cblock)
                offset += sum(len(lookup) for lookup in cblock.lookups)
            else:
                raise Unsupported(f"transformer {name!r} mixes numeric and string columns")
        self.width = offset

    def transform(self, batch: Batch) -> np.ndarray:
        x = np.zeros((batch.rows, self.width), dtype=np.float64)
        for block in self.numeric_blocks:
            block.write(x, batch)
        for cblock in self.categorical_blocks:
            cblock.write(x, batch)
        return x


# -- estimators ----------------------------------------------------------------------------


def hgb_to_onnx(estimator: Any, width: int) -> bytes:
    """A binary HistGradientBoostingClassifier as one ONNX TreeEnsembleRegressor giving the
    raw score (double thresholds and leaf values; NaN follows missing_go_to_left)."""
    from onnx import TensorProto, helper, numpy_helper

    if estimator.n_trees_per_iteration_ != 1:
        raise Unsupported("multi-class gradient boosting")
    attrs: dict[str, list[Any]] = {
        k: [] for k in ("tree", "node", "feature", "mode", "value", "true", "false", "missing")
    }
    leaves: dict[str, list[Any]] = {"tree": [], "node": [], "weight": []}
    for tree_id, (predictor,) in enumerate(estimator._predictors):
        for node_id, node in enumerate(predictor.nodes):
            attrs["tree"].append(tree_id)
            attrs["node"].append(node_id)
            if node["is_leaf"]:
                row = (0, "LEAF", 0.0, 0, 0, 0)
                leaves["tree"].append(tree_id)
                leaves["node"].append(node_id)
                leaves["weight"].append(float(node["value"]))
            elif node["is_categorical"]:
                raise Unsupported("native categorical splits")
            else:
                row = (
                    int(node["feature_idx"]),
                    "BRANCH_LEQ",
                    float(node["num_threshold"]),
                    int(node["left"]),
                    int(node["right"]),
                    int(node["missing_go_to_left"]),
                )
            for key, value in zip(
                ("feature", "mode", "value", "true", "false", "missing"), row, strict=True
            ):
                attrs[key].append(value)
    baseline = float(np.asarray(estimator._baseline_prediction).ravel()[0])
    node = helper.make_node(
        "TreeEnsembleRegressor",
        ["X"],
        ["raw"],
        domain="ai.onnx.ml",
        nodes_treeids=attrs["tree"],
        nodes_nodeids=attrs["node"],
        nodes_featureids=attrs["feature"],
        nodes_modes=attrs["mode"],
        nodes_values_as_tensor=numpy_helper.from_array(np.array(attrs["value"], np.float64)),
        nodes_truenodeids=attrs["true"],
        nodes_falsenodeids=attrs["false"],
        nodes_missing_value_tracks_true=attrs["missing"],
        target_treeids=leaves["tree"],
        target_nodeids=leaves["node"],
        target_ids=[0] * len(leaves["node"]),
        target_weights_as_tensor=numpy_helper.from_array(np.array(leaves["weight"], np.float64)),
        base_values_as_tensor=numpy_helper.from_array(np.array([baseline], np.float64)),
        n_targets=1,
        aggregate_function="SUM",
        post_transform="NONE",
    )
    graph = helper.make_graph(
        [node],
        "hist_gradient_boosting",
        [helper.make_tensor_value_info("X", TensorProto.DOUBLE, [None, width])],
        [helper.make_tensor_value_info("raw", TensorProto.FLOAT, [None, 1])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)]
    )
    model.ir_version = 8
    return bytes(model.SerializeToString())


class _OnnxTrees:
    kind = "onnx"

    def __init__(self, onnx_model: bytes) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.onnx_model = onnx_model
        self.session = ort.InferenceSession(onnx_model, options, providers=["CPUExecutionProvider"])

    def raw(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(None, {"X": x})[0][:, 0], dtype=np.float64)


class _Linear:
    kind = "numpy"

    def __init__(self, coef: Any, intercept: Any) -> None:
        self.coef = np.asarray(coef, dtype=np.float64).T
        self.intercept = np.asarray(intercept, dtype=np.float64)
        if self.coef.shape[1] != 1:
            raise Unsupported("multi-class logistic regression")

    def raw(self, x: np.ndarray) -> np.ndarray:
        return (x @ self.coef + self.intercept)[:, 0]


def expit(x: np.ndarray) -> np.ndarray:
    """The logistic function (scipy's `expit`, which sklearn uses, in numpy: the lean image
    has no scipy); within 1e-16 of it."""
    return np.asarray(1.0 / (1.0 + np.exp(-x)), dtype=np.float64)


class FastPredictor:
    """Numpy preprocessing + ONNX trees or a numpy linear model, then the logistic function.

    Built from the fitted pipeline (`from_pipeline`, needs sklearn), or from its compiled form
    saved at export time (serving/compiled.py; needs only numpy and onnxruntime)."""

    def __init__(self, prep: _Preprocessor, model: _OnnxTrees | _Linear) -> None:
        self.prep, self.model, self.kind = prep, model, model.kind

    @classmethod
    def from_pipeline(cls, pipeline: Any, card: ModelCard) -> FastPredictor:
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline

        if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
            raise Unsupported("the model is not a two-step Pipeline (preprocessing, estimator)")
        _positive_column(pipeline)
        prep = _Preprocessor(pipeline.steps[0][1], card)
        estimator = pipeline.steps[-1][1]
        if prep.width != estimator.n_features_in_:
            raise Unsupported(f"replayed {prep.width} columns, model expects more")
        model: _OnnxTrees | _Linear
        if type(estimator) is HistGradientBoostingClassifier:
            model = _OnnxTrees(hgb_to_onnx(estimator, prep.width))
        elif type(estimator) is LogisticRegression:
            model = _Linear(estimator.coef_, estimator.intercept_)
        else:
            raise Unsupported(f"estimator {type(estimator).__name__}")
        return cls(prep, model)

    def scores(self, batch: Batch) -> np.ndarray:
        return np.asarray(expit(self.model.raw(self.prep.transform(batch))), dtype=np.float64)


def probe_batch(card: ModelCard) -> Batch:
    """Rows that touch every reference bin edge, every known category, missing values and an
    unseen category, each varying one field of the model's own input example."""
    base = dict(card.example[0])
    records: list[dict[str, Any]] = [dict(r) for r in card.example]
    for feature in card.features:
        ref = card.reference["features"][feature.name]
        if feature.kind == "numeric":
            edges = ref.get("edges", [])
            values: list[Any] = [None, *edges, *(e + 0.5 for e in edges), *(e - 0.5 for e in edges)]
        else:
            values = [None, UNSEEN, *(k for k in ref["proportions"] if not k.startswith("__"))]
        records.extend({**base, feature.name: v} for v in values)
    return Batch.from_records(records, card)


def build_predictor(pipeline: Any, card: ModelCard, fast: bool = True) -> tuple[Predictor, str]:
    """The fast predictor when it compiles and matches sklearn on the probe rows, else the
    sklearn pipeline; returns it with a one-line reason for the choice."""
    reference = SklearnPredictor(pipeline, card)
    if not fast:
        return reference, "fast path turned off (MODELOPS_FAST_PATH=false)"
    try:
        candidate = FastPredictor.from_pipeline(pipeline, card)
    except Unsupported as why:
        log.warning("serving with sklearn: the fast path cannot replay this pipeline (%s)", why)
        return reference, f"sklearn: fast path unsupported ({why})"
    probe = probe_batch(card)
    gap = float(np.max(np.abs(candidate.scores(probe) - reference.scores(probe))))
    if not gap <= TOLERANCE:
        log.warning("serving with sklearn: fast path differs by %.3g on probe rows", gap)
        return reference, f"sklearn: fast path differs by {gap:.3g} on probe rows"
    return (
        candidate,
        f"{candidate.kind}: matches sklearn within {gap:.1g} on {probe.rows} probe rows",
    )
