"""What the service knows about its model, read from the MLflow model folder.

`read_card` parses only small text files (MLmodel, export.json, reference.json, the input
example, log_redact.json), so the request schema and the OpenAPI page exist before the model
itself is deserialized; `load_pipeline` then loads the fitted sklearn pipeline.
"""

from __future__ import annotations

import importlib.util
import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from modelops.registry.export import EXPORT_FILE
from modelops.registry.log_policy import LogRedaction, read_policy
from modelops.registry.reference import REFERENCE_FILE

UNREGISTERED = "unregistered"
NUMERIC_TYPES = {"double", "float", "long", "integer"}
CATEGORICAL_TYPES = {"string"}
TRUSTED_MODULES = ("sklearn.", "numpy.")


class ModelLoadError(RuntimeError):
    """The model folder cannot be served; the message says what is missing and what to do."""


@dataclass(frozen=True)
class Feature:
    """One input column, as the model's signature declares it."""

    name: str
    kind: Literal["numeric", "categorical"]


@dataclass(frozen=True)
class ModelCard:
    """Identity, inputs and serving metadata of one model folder."""

    path: Path
    name: str
    version: str
    run_id: str
    git_commit: str
    features: tuple[Feature, ...]
    positive_class: str
    threshold: float
    reference: dict[str, Any]
    example: list[dict[str, Any]]
    sklearn_flavor: dict[str, Any]
    log_policy: LogRedaction | None = None

    @property
    def numeric(self) -> list[str]:
        return [f.name for f in self.features if f.kind == "numeric"]

    @property
    def categorical(self) -> list[str]:
        return [f.name for f in self.features if f.kind == "categorical"]


def is_registry_uri(source: str) -> bool:
    """True for models:/, runs:/ and other remote URIs; False for local folders."""
    return "://" in source or source.startswith(("models:/", "runs:/"))


def resolve_model_dir(
    source: str, workdir: Path | None = None, redaction: LogRedaction | None = None
) -> Path:
    """A local model folder for `source`: the folder itself, or a registry model exported
    into `workdir` (a new temporary folder when None) with the log `redaction` policy
    (params.yaml's, when the launcher has one). Registry URIs need mlflow."""
    if not source:
        raise ModelLoadError(
            "no model given: set MODELOPS_MODEL_URI (or --model) to an MLflow model folder "
            "or a registry URI such as models:/credit-scoring@champion"
        )
    if source.startswith("file://"):
        source = source[len("file://") :]
    if not is_registry_uri(source):
        path = Path(source)
        if not (path / "MLmodel").is_file():
            raise ModelLoadError(
                f"{path}: not an MLflow model folder (no MLmodel file); give the folder written "
                "by `modelops train` or `modelops export-model`, or a models:/ URI"
            )
        return path
    if importlib.util.find_spec("mlflow") is None:
        raise ModelLoadError(
            f"loading {source} needs mlflow, which this environment (the service image) does "
            "not have: bake the model in with `modelops export-model` and serve the folder"
        )
    from modelops.registry.client import open_registry
    from modelops.registry.export import export_model
    from modelops.registry.tracking import TrackingSettings

    target = (workdir or Path(tempfile.mkdtemp(prefix="modelops-model-"))) / "model"
    export_model(source, target, open_registry(TrackingSettings()), redaction=redaction)
    return target


def _signature_features(mlmodel: dict[str, Any], path: Path) -> tuple[Feature, ...]:
    signature = mlmodel.get("signature") or {}
    if not signature.get("inputs"):
        raise ModelLoadError(
            f"{path}/MLmodel has no input signature; log the model with a signature "
            "(modelops train does) so the service knows its fields"
        )
    features = []
    for column in json.loads(signature["inputs"]):
        name, kind = column.get("name"), column.get("type")
        if not name:
            raise ModelLoadError(f"{path}/MLmodel: the signature must name every column")
        if kind in NUMERIC_TYPES:
            features.append(Feature(name, "numeric"))
        elif kind in CATEGORICAL_TYPES:
            features.append(Feature(name, "categorical"))
        else:
            raise ModelLoadError(
                f"{path}/MLmodel: column {name!r} has type {kind!r}; the service serves "
                f"numeric ({', '.join(sorted(NUMERIC_TYPES))}) and string columns"
            )
    return tuple(features)


def _example_records(path: Path, features: tuple[Feature, ...], reference: dict[str, Any]) -> list:
    """The model's input example as records (NaN -> None); synthesized from the reference
    (a middle bin edge, the most common category) when the folder has none."""
    example_file = path / "input_example.json"
    if example_file.is_file():
        raw = json.loads(example_file.read_text())
        if isinstance(raw, dict) and "columns" in raw and "data" in raw:
            records = [dict(zip(raw["columns"], row, strict=True)) for row in raw["data"]]
            return [
                {f.name: _missing_to_none(r.get(f.name)) for f in features} for r in records[:5]
            ]
    record: dict[str, Any] = {}
    for f in features:
        ref = reference["features"].get(f.name, {})
        if f.kind == "numeric":
            edges = ref.get("edges") or [0.0]
            record[f.name] = float(edges[len(edges) // 2])
        else:
            shares = {k: v for k, v in ref.get("proportions", {}).items() if not k.startswith("__")}
            record[f.name] = max(shares, key=lambda k: shares[k]) if shares else "unknown"
    return [record]


def _missing_to_none(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def read_card(path: Path, name_override: str | None = None) -> ModelCard:
    """Read the model's identity, signature, threshold, reference bins and input example."""
    mlmodel_file = path / "MLmodel"
    if not mlmodel_file.is_file():
        raise ModelLoadError(f"{path}: no MLmodel file; not an MLflow model folder")
    mlmodel = yaml.safe_load(mlmodel_file.read_text()) or {}
    flavors = mlmodel.get("flavors") or {}
    if "sklearn" not in flavors:
        raise ModelLoadError(
            f"{path}: not an sklearn model (flavors: {sorted(flavors)}); the service serves the "
            "sklearn pipelines that `modelops train` logs"
        )
    predict_fn = (flavors.get("python_function") or {}).get("predict_fn", "predict")
    if predict_fn != "predict_proba":
        raise ModelLoadError(
            f"{path}: the model's pyfunc predict_fn is {predict_fn!r}; log it with "
            "pyfunc_predict_fn='predict_proba' (as modelops train does) so /invocations "
            "returns the same probabilities as `mlflow models serve`"
        )
    reference_file = path / "extra_files" / REFERENCE_FILE
    if not reference_file.is_file():
        raise ModelLoadError(
            f"{path}: no extra_files/{REFERENCE_FILE}; the drift metrics need the reference "
            "bins that `modelops train` saves with the model"
        )
    reference = json.loads(reference_file.read_text())
    features = _signature_features(mlmodel, path)
    metadata = mlmodel.get("metadata") or {}
    exported = (
        json.loads((path / EXPORT_FILE).read_text()) if (path / EXPORT_FILE).is_file() else {}
    )
    missing_ref = [f.name for f in features if f.name not in reference.get("features", {})]
    if missing_ref or "score" not in reference:
        raise ModelLoadError(
            f"{reference_file}: no reference bins for {missing_ref or ['score']}; retrain the model"
        )
    return ModelCard(
        path=path,
        name=str(exported.get("model_name") or name_override or UNREGISTERED),
        version=str(exported.get("model_version") or UNREGISTERED),
        run_id=str(exported.get("run_id") or mlmodel.get("run_id") or ""),
        git_commit=str(exported.get("git_commit") or "unknown"),
        features=features,
        positive_class=str(metadata.get("positive_class", "1")),
        threshold=float(metadata.get("decision_threshold", 0.5)),
        reference=reference,
        example=_example_records(path, features, reference),
        sklearn_flavor=flavors["sklearn"],
        log_policy=_log_policy(path, features),
    )


def _log_policy(path: Path, features: tuple[Feature, ...]) -> LogRedaction | None:
    try:
        policy = read_policy(path)
    except ValueError as error:  # Refused is a ModelopsError, not a ValueError
        raise ModelLoadError(str(error)) from error
    unknown = [c for c in (policy.columns if policy else []) if c not in {f.name for f in features}]
    if unknown:
        raise ModelLoadError(f"{path}/log_redact.json names {unknown}, not inputs of the model")
    return policy


def load_pipeline(card: ModelCard) -> Any:
    """Deserialize the fitted sklearn pipeline. skops models load without mlflow, trusting
    only the sklearn/numpy types their MLmodel lists; other formats go through mlflow."""
    flavor = card.sklearn_flavor
    if flavor.get("serialization_format") == "skops":
        import skops.io

        trusted = list(flavor.get("skops_trusted_types") or [])
        foreign = [t for t in trusted if not t.startswith(TRUSTED_MODULES)]
        if foreign:
            raise ModelLoadError(
                f"{card.path}/MLmodel asks to trust {foreign}; the service only trusts sklearn "
                "and numpy types when loading a skops model"
            )
        return skops.io.load(card.path / flavor["pickled_model"], trusted=trusted)
    import mlflow.sklearn

    return mlflow.sklearn.load_model(str(card.path))
