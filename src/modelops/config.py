"""Typed view of params.yaml: the ML knobs, read once and passed down explicitly."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from modelops.errors import ParamsError

_INTEGRAL = re.compile(r"^[+-]?[0-9]+(?:[.]0*)?$")


def canonical_label(value: Any) -> str | None:
    """One spelling per label value, so CSV strings, 0/1 integers and booleans compare equal
    to the same value in params.yaml: whole numbers (1, 1.0, "1.0") -> "1"; booleans and
    "true"/"false" in any case -> "1"/"0" (a binary label's true is its 1); other strings
    stripped. None/NaN -> None (missing)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        value = value.item()
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    text = str(value).strip()
    if text.lower() in {"true", "false"}:
        return "1" if text.lower() == "true" else "0"
    if _INTEGRAL.match(text):
        return str(int(float(text)))
    return text


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataParams(_Section):
    path: str
    target: str
    positive_class: str  # any label type in params.yaml (bad, 1, true), kept canonical
    numeric_features: list[str] = Field(default_factory=list)
    categorical_features: list[str] = Field(default_factory=list)
    segment_column: str | None = None

    @field_validator("positive_class", mode="before")
    @classmethod
    def _canonical_positive_class(cls, value: Any) -> str:
        label = canonical_label(value)
        if label is None or label == "":
            raise ValueError("data.positive_class: give the label value the model scores")
        return label

    @property
    def features(self) -> list[str]:
        """All predictors, numeric first, in the order the model sees them."""
        return [*self.numeric_features, *self.categorical_features]

    @model_validator(mode="after")
    def _check_columns(self) -> DataParams:
        if not self.features:
            raise ValueError("data: list at least one of numeric_features / categorical_features")
        overlap = set(self.numeric_features) & set(self.categorical_features)
        if overlap:
            raise ValueError(f"data: columns listed as numeric and categorical: {sorted(overlap)}")
        if self.target in self.features:
            raise ValueError(f"data: target {self.target!r} is also listed as a feature")
        return self


class DataValidationParams(_Section):
    min_rows: int = 100
    max_missing_rate: float = 0.2
    max_duplicate_rate: float = 0.05
    min_minority_rate: float = 0.01
    ranges: dict[str, tuple[float, float]] = Field(default_factory=dict)


class WindowParams(_Section):
    """Which source batches the training table takes: the last `batches`, or those dated within
    `days` of the newest batch (the date is the YYYY-MM-DD in the batch's path). Exactly one."""

    batches: int | None = Field(None, ge=1)
    days: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _one_kind(self) -> WindowParams:
        if (self.batches is None) == (self.days is None):
            raise ValueError("source.window: set exactly one of `batches: N` or `days: N`")
        return self


class SourceParams(_Section):
    """Where new labeled batches (CSV/parquet files) land: a folder, s3://... or gs://..."""

    url: str = "data/incoming"
    window: WindowParams = WindowParams(batches=52)


class SplitParams(_Section):
    test_size: float = Field(0.25, gt=0, lt=1)
    seed: int = 42


class HistGradientBoostingParams(_Section):
    learning_rate: float = 0.1
    max_iter: int = 100
    max_leaf_nodes: int = 31
    min_samples_leaf: int = 20
    l2_regularization: float = 0.0


class LogisticRegressionParams(_Section):
    C: float = 1.0
    max_iter: int = 1000


class TrainParams(_Section):
    model: Literal["hist_gradient_boosting", "logistic_regression"] = "hist_gradient_boosting"
    seed: int = 42
    reference_bins: int = Field(10, ge=2, le=100)
    hist_gradient_boosting: HistGradientBoostingParams = HistGradientBoostingParams()
    logistic_regression: LogisticRegressionParams = LogisticRegressionParams()


class EvaluateParams(_Section):
    bootstrap_rounds: int = Field(1000, ge=10)
    confidence_level: float = Field(0.95, gt=0, lt=1)
    seed: int = 7


class GateParams(_Section):
    min_auc: float = Field(0.7, ge=0, le=1)
    max_auc_drop: float = Field(0.01, ge=0, le=1)
    alpha: float = Field(0.05, gt=0, lt=1)


class ModelCardParams(_Section):
    """What the model card says that the data cannot: its purpose and where it must not be used."""

    intended_use: str = ""
    out_of_scope: str = ""
    date_column: str | None = None  # a column of data.path whose range is the data's period


class RegisterParams(_Section):
    model_name: str = "model"
    card: ModelCardParams = ModelCardParams()


class LoadtestParams(_Section):
    """`make loadtest`: locust against a running service; fails on any error or a slow p99."""

    users: int = Field(20, ge=1)
    user_rps: float = Field(10.0, gt=0)
    spawn_rate: float = Field(20.0, gt=0)
    run_time_s: int = Field(30, ge=1)
    max_p99_ms: float = Field(50.0, gt=0)


class LogRedactParams(_Section):
    """Input columns kept out of the prediction log as sent: dropped, or replaced by an
    HMAC-SHA256 of the value (keyed by MODELOPS_LOG_HASH_SALT, so equal values still match)."""

    drop: list[str] = Field(default_factory=list)
    hash: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_lists(self) -> LogRedactParams:
        both = sorted(set(self.drop) & set(self.hash))
        if both:
            raise ValueError(f"serve.log_redact: {both} listed under both drop and hash; pick one")
        return self


class ServeParams(_Section):
    decision_threshold: float = Field(0.5, ge=0, le=1)
    log_redact: LogRedactParams = LogRedactParams()
    loadtest: LoadtestParams = LoadtestParams()


class DriftParams(_Section):
    """Thresholds of `modelops drift` (the Prometheus alert rules use the same PSI levels)."""

    psi_warning: float = Field(0.1, gt=0)
    psi_alert: float = Field(0.25, gt=0)
    alpha: float = Field(0.05, gt=0, lt=1)
    correction: Literal["bonferroni", "none"] = "bonferroni"
    min_rows: int = Field(500, ge=1)
    epsilon: float = Field(1e-4, gt=0, lt=0.01)
    score: bool = True

    @model_validator(mode="after")
    def _check_levels(self) -> DriftParams:
        if self.psi_warning > self.psi_alert:
            raise ValueError("drift: psi_warning must not exceed psi_alert")
        return self


class MonitorParams(_Section):
    """Prediction-log retention and the label-aware AUC guard (`modelops validate`)."""

    retention_days: int = Field(90, ge=1)
    max_auc_drop: float = Field(0.05, ge=0, le=1)
    min_labeled_rows: int = Field(200, ge=2)
    min_class_rows: int = Field(10, ge=1)
    on_auc_drop: Literal["rollback", "retrain", "alert"] = "rollback"


class ShadowParams(_Section):
    """The shadow phase: the candidate answers a mirrored copy of live requests (answers
    discarded) and is compared with stable on the same requests before any user traffic moves.
    """

    enabled: bool = True
    mirror_percent: int = Field(50, ge=1, le=100)
    duration_seconds: float = Field(20.0, ge=0)
    min_requests: int = Field(200, ge=1)
    min_agreement: float = Field(0.95, ge=0, le=1)
    max_mean_score_diff: float = Field(0.05, ge=0)
    max_score_diff: float = Field(0.5, ge=0)
    max_score_psi: float = Field(0.25, gt=0)
    max_error_rate: float = Field(0.01, ge=0, le=1)
    max_p99_ms: float = Field(200.0, gt=0)


class CanaryParams(_Section):
    """The canary controller: traffic steps, analysis interval, thresholds, failure handling.

    Every knob is read from here and passed down; tests and the local rehearsal pass a copy
    with short intervals (`params.canary.model_copy(update={...})`).
    """

    steps: list[int] = Field(default_factory=lambda: [5, 25, 50, 100], min_length=1)
    interval_seconds: float = Field(30.0, gt=0)
    check_interval_seconds: float = Field(10.0, gt=0)
    check_window_seconds: float = Field(20.0, gt=0)
    min_requests: int = Field(20, ge=1)
    min_score_rows: int = Field(500, ge=1)
    max_error_rate: float = Field(0.01, ge=0, le=1)
    max_p99_ratio: float = Field(1.5, ge=1)
    p99_slack_ms: float = Field(50.0, ge=0)
    max_p99_ms: float = Field(200.0, gt=0)
    max_score_psi: float = Field(0.25, gt=0)
    failure_threshold: int = Field(2, ge=1)
    progress_deadline_seconds: float = Field(300.0, gt=0)
    rollback_attempts: int = Field(5, ge=1)
    rollback_retry_seconds: float = Field(10.0, ge=0)
    smoke_requests: int = Field(5, ge=1)
    prometheus_url: str = "http://127.0.0.1:9090"
    query_timeout_seconds: float = Field(10.0, gt=0)
    shadow: ShadowParams = ShadowParams()

    @model_validator(mode="after")
    def _check_steps(self) -> CanaryParams:
        if any(not 1 <= step <= 100 for step in self.steps):
            raise ValueError(f"canary.steps {self.steps}: every step is a percent from 1 to 100")
        if any(b <= a for a, b in zip(self.steps, self.steps[1:], strict=False)):
            raise ValueError(f"canary.steps {self.steps}: list the percents in rising order")
        if self.progress_deadline_seconds < self.interval_seconds:
            raise ValueError(
                "canary.progress_deadline_seconds must be at least interval_seconds "
                "(a step needs one full interval to be judged)"
            )
        return self

    @property
    def check_every_s(self) -> float:
        """Seconds between two analyses (never longer than a step's interval)."""
        return min(self.check_interval_seconds, self.interval_seconds)

    @property
    def hard_window_s(self) -> float:
        """Window of the request, 5xx and p99 checks (at least one cadence, at most a step)."""
        return min(max(self.check_window_seconds, self.check_every_s), self.interval_seconds)


class Params(BaseModel):
    """The whole of params.yaml. Unknown top-level sections are kept for later issues."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    data: DataParams
    data_validation: DataValidationParams = DataValidationParams()
    source: SourceParams = SourceParams()
    split: SplitParams = SplitParams()
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()
    gate: GateParams = GateParams()
    register_: RegisterParams = Field(RegisterParams(), alias="register")
    serve: ServeParams = ServeParams()
    drift: DriftParams = DriftParams()
    monitor: MonitorParams = MonitorParams()
    canary: CanaryParams = CanaryParams()


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml; errors name the file and the offending key."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: not found; run from the repository root or pass --params")
    raw = yaml.safe_load(path.read_text()) or {}
    try:
        return Params.model_validate(raw)
    except ValueError as error:
        raise ParamsError(f"{path}: {error}") from error
