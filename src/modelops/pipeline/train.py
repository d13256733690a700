"""Train stage: fit the sklearn Pipeline chosen in params and log it as an MLflow run."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from modelops.config import Params
from modelops.pipeline.data import coerce_features, labels
from modelops.registry.client import open_registry
from modelops.registry.reference import REFERENCE_FILE, build_reference
from modelops.registry.tracking import (
    TrackingSettings,
    artifact_location,
    file_md5,
    git_commit,
    use_for_run_logging,
)

MODEL_ARTIFACT = "model"


@dataclass
class TrainResult:
    """What later stages need to find the run: written to models/run.json."""

    run_id: str
    model_uri: str
    experiment_id: str
    git_commit: str
    data_md5: str
    train_rows: int
    fit_seconds: float
    data_batches: int = 0  # source batches in the training table (lineage.json lists them)


def build_pipeline(params: Params) -> Pipeline:
    """Imputation and encoding per column kind, then the estimator named in params."""
    train = params.train
    numeric_steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
    if train.model == "logistic_regression":
        numeric_steps.append(("scale", StandardScaler()))
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
            ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    prep = ColumnTransformer(
        [
            ("numeric", Pipeline(numeric_steps), params.data.numeric_features),
            ("categorical", categorical, params.data.categorical_features),
        ],
        verbose_feature_names_out=False,
    )
    estimator: Any
    if train.model == "hist_gradient_boosting":
        hgb = train.hist_gradient_boosting
        estimator = HistGradientBoostingClassifier(
            learning_rate=hgb.learning_rate,
            max_iter=hgb.max_iter,
            max_leaf_nodes=hgb.max_leaf_nodes,
            min_samples_leaf=hgb.min_samples_leaf,
            l2_regularization=hgb.l2_regularization,
            early_stopping=False,
            random_state=train.seed,
        )
    else:
        lr = train.logistic_regression
        estimator = LogisticRegression(C=lr.C, max_iter=lr.max_iter, random_state=train.seed)
    return Pipeline([("prep", prep), ("model", estimator)])


def fit(params: Params, frame: pd.DataFrame) -> tuple[Pipeline, pd.DataFrame, np.ndarray, float]:
    """Fit on a raw training frame; returns the model, its features, labels and fit seconds."""
    features = coerce_features(frame, params.data)
    y = labels(frame, params.data)
    pipeline = build_pipeline(params)
    started = time.perf_counter()
    pipeline.fit(features, y)
    return pipeline, features, y, time.perf_counter() - started


def flat_params(params: Params) -> dict[str, Any]:
    """The knobs that shape the model, flattened for mlflow.log_params."""
    train = params.train
    chosen = getattr(train, train.model).model_dump()
    return {
        "model": train.model,
        "seed": train.seed,
        "target": params.data.target,
        "positive_class": params.data.positive_class,
        "numeric_features": ",".join(params.data.numeric_features),
        "categorical_features": ",".join(params.data.categorical_features),
        **{f"{train.model}.{k}": v for k, v in chosen.items()},
    }


def _trusted_types(model: Pipeline) -> list[str]:
    """The types of the pipeline we just built; skops refuses anything else at load time."""
    import skops.io

    return list(skops.io.get_untrusted_types(data=skops.io.dumps(model)))


def _pip_requirements() -> list[str]:
    """Pin what loading the model needs to the versions it was trained with (no slow inference)."""
    from importlib.metadata import version

    packages = ["mlflow", "scikit-learn", "skops", "numpy", "pandas", "scipy"]
    return [f"{name}=={version(name)}" for name in packages]


def train_and_log(
    params: Params,
    train_path: Path,
    raw_data_path: Path,
    model_dir: Path,
    run_file: Path,
    settings: TrackingSettings,
    lineage: Path | None = None,
) -> TrainResult:
    """Fit, log an MLflow run (params, metrics, model + signature + reference, the data's
    lineage: base hash, batches and their hashes), save locally."""
    import mlflow
    from mlflow.models import infer_signature

    frame = pd.read_parquet(train_path)
    pipeline, features, y, fit_seconds = fit(params, frame)
    scores = pipeline.predict_proba(features)[:, 1]
    reference = build_reference(
        features,
        params.data.numeric_features,
        params.data.categorical_features,
        scores,
        params.train.reference_bins,
    )
    commit, data_md5 = git_commit(), file_md5(raw_data_path)
    lineage_data = json.loads(lineage.read_text()) if lineage is not None else {"batches": []}
    batches = [str(b["name"]) for b in lineage_data.get("batches", [])]
    registry = open_registry(settings)
    experiment_id = registry.experiment_id(settings.experiment_name, artifact_location(settings))
    use_for_run_logging(settings)

    with mlflow.start_run(experiment_id=experiment_id) as run, tempfile.TemporaryDirectory() as tmp:
        mlflow.log_params(flat_params(params))
        mlflow.log_metrics(
            {
                "train_roc_auc": float(roc_auc_score(y, scores)),
                "fit_seconds": fit_seconds,
                "train_rows": float(len(frame)),
            }
        )
        mlflow.set_tags(
            {
                "git_commit": commit,
                "data_md5": data_md5,
                "data_path": str(raw_data_path),
                "pipeline_stage": "train",
                **lineage_tags(lineage_data),
            }
        )
        if lineage is not None:
            mlflow.log_artifact(str(lineage), artifact_path="data")
        reference_path = Path(tmp) / REFERENCE_FILE
        reference_path.write_text(json.dumps(reference, indent=1))
        example = features.head(5)
        info = mlflow.sklearn.log_model(
            pipeline,
            name=MODEL_ARTIFACT,
            signature=infer_signature(example, pipeline.predict_proba(example)),
            input_example=example,
            pyfunc_predict_fn="predict_proba",
            skops_trusted_types=_trusted_types(pipeline),
            extra_files=[str(reference_path)],
            pip_requirements=_pip_requirements(),
            metadata={
                "positive_class": params.data.positive_class,
                "features": params.data.features,
                "decision_threshold": params.serve.decision_threshold,
            },
        )
        if model_dir.exists():
            shutil.rmtree(model_dir)
        model_dir.parent.mkdir(parents=True, exist_ok=True)
        downloaded = registry.download(info.model_uri, Path(tmp) / "download")
        shutil.move(downloaded, model_dir)

    result = TrainResult(
        run_id=run.info.run_id,
        model_uri=info.model_uri,
        experiment_id=experiment_id,
        git_commit=commit,
        data_md5=data_md5,
        train_rows=len(frame),
        fit_seconds=round(fit_seconds, 3),
        data_batches=len(batches),
    )
    run_file.parent.mkdir(parents=True, exist_ok=True)
    run_file.write_text(json.dumps(asdict(result), indent=2) + "\n")
    return result


TAG_LIMIT = 4000  # characters of the batch list kept in a tag; lineage.json has them all


def lineage_tags(lineage: dict[str, Any]) -> dict[str, str]:
    """Run tags for the data's lineage: the base table's hash, how many batches, and which
    (`name:md5`, newest last; the artifact data/lineage.json lists them all)."""
    batches = [f"{b['name']}:{b['md5']}" for b in lineage.get("batches", [])]
    listed = ",".join(batches)
    if len(listed) > TAG_LIMIT:
        kept = listed[-TAG_LIMIT:].split(",", 1)[-1]
        listed = f"(+{len(batches) - len(kept.split(','))} older, see data/lineage.json),{kept}"
    tags = {"data_batch_count": str(len(batches)), "data_batches": listed}
    base = lineage.get("base") or {}
    if base.get("md5"):
        tags["base_data_md5"] = str(base["md5"])
    return tags


def read_run(run_file: Path) -> TrainResult:
    """Load models/run.json written by the train stage."""
    if not run_file.is_file():
        raise FileNotFoundError(f"{run_file}: not found; run `dvc repro train` first")
    return TrainResult(**json.loads(run_file.read_text()))
