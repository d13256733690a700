"""Runtime settings of the service, read from MODELOPS_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

FILE_SUFFIXES = (".jsonl", ".json", ".ndjson", ".log", ".txt", ".csv")


class ServeSettings(BaseSettings):
    """Everything the service reads at start. The ML knobs (threshold, features) come from
    the model itself; these are the deployment's knobs.

    MODELOPS_MODEL_URI is a local MLflow model folder (what the image carries) or a
    registry URI such as models:/credit-scoring@champion (needs mlflow + MLFLOW_TRACKING_URI).
    """

    model_config = SettingsConfigDict(env_prefix="MODELOPS_", extra="ignore")

    model_uri: str = Field("", description="MLflow model folder or models:/ / runs:/ URI")
    model_name: str | None = Field(None, description="name to report when the folder has none")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(2, ge=1, le=64)
    environment: str = Field("local", description="reported in /version and the prediction log")
    track: str = Field("", description="stable / canary, when a router splits traffic (logged)")
    image_tag: str = Field("none", description="the image this process runs in (set by the image)")
    git_commit: str | None = Field(None, description="overrides the commit recorded with the model")
    prediction_log: str = Field(
        "logs/predictions",
        description="folder of day partitions (date=YYYY-MM-DD/predictions-<host>.jsonl), "
        "'-' for stdout, '' to turn off",
    )
    log_hash_salt: SecretStr | None = Field(
        None, description="HMAC key of the columns the model's log_redact.json hashes"
    )
    prediction_log_sample_rate: float = Field(1.0, ge=0.0, le=1.0)
    prediction_log_flush_seconds: float = Field(0.5, gt=0.0, le=300.0)
    prediction_log_queue_rows: int = Field(100_000, ge=1)
    max_batch_rows: int = Field(1000, ge=1)
    max_body_bytes: int = Field(1_000_000, ge=1024)
    fast_path: bool = Field(True, description="ONNX/numpy predictor; False forces sklearn")
    metrics_dir: Path | None = Field(None, description="prometheus multiprocess folder")
    ready_dir: Path | None = Field(
        None, description="folder the workers share for readiness markers (set by the launcher)"
    )
    metrics_flush_seconds: float = Field(
        1.0, gt=0.0, le=60.0, description="how often tallied counters reach /metrics"
    )
    graceful_timeout_seconds: float = Field(20.0, gt=0.0)
    access_log: bool = False
    log_level: str = "info"

    @field_validator("prediction_log")
    @classmethod
    def _a_folder(cls, value: str) -> str:
        """The log is a folder of day partitions now; a file name is a stale setting."""
        path = Path(value)
        if value not in ("", "-") and (path.suffix in FILE_SUFFIXES or path.is_file()):
            raise ValueError(
                f"{value!r} names a file, but the prediction log is a "
                "folder the service fills with day partitions (<folder>/date=YYYY-MM-DD/"
                "predictions-<host>.jsonl): set it to a folder such as "
                f"{str(path.with_suffix('')) if path.suffix else str(path) + '.d'!r}, '-' for "
                "stdout or '' to turn the log off"
            )
        return value
