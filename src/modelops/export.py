"""Export a model version to a plain folder: what the image carries and the service loads.

The folder is the MLflow model itself (MLmodel, model.skops, extra_files/reference.json, ...)
plus `export.json`, which records where it came from (registered name, version, run id,
git commit), so a service running without a registry can still say what it serves.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelops.errors import Refused, RegistryError

EXPORT_FILE = "export.json"
UNREGISTERED = "unregistered"
_ALIAS_URI = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/]+)$")
_VERSION_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")
_RUN_URI = re.compile(r"^runs:/(?P<run_id>[0-9a-f]+)/")


@dataclass(frozen=True)
class ExportInfo:
    """Provenance of an exported model folder (the content of export.json)."""

    model_name: str
    model_version: str
    run_id: str
    git_commit: str
    source_uri: str
    exported_at: str

    def build_args(self, folder: Path) -> str:
        """The `docker build` arguments that bake this folder into the image."""
        return (
            f"--build-arg MODEL_DIR={folder} --build-arg MODEL_NAME={self.model_name} "
            f"--build-arg MODEL_VERSION={self.model_version} --build-arg MODEL_RUN_ID={self.run_id}"
        )


def expand_model_uri(value: str, params_path: str | Path = "params.yaml") -> str:
    """A bare alias ('champion') or version ('3') becomes models:/<register.model_name>@alias
    or /version, the name read from params.yaml; folders and URIs pass through unchanged."""
    if not value or ":/" in value or "/" in value or Path(value).exists():
        return value
    from modelops.config import load_params

    name = load_params(params_path).register_.model_name
    return f"models:/{name}/{value}" if value.isdigit() else f"models:/{name}@{value}"


def _run_commit(client: Any, run_id: str) -> str:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_run(run_id).data.tags.get("git_commit", "unknown"))
    except MlflowException:
        return "unknown"


def _identity(model_uri: str) -> tuple[str, str, str, str]:
    """(name, version, run_id, git_commit) of a registry or run URI; raises on unknown ones."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    alias, version, run = (p.match(model_uri) for p in (_ALIAS_URI, _VERSION_URI, _RUN_URI))
    try:
        if alias:
            mv = client.get_model_version_by_alias(alias["name"], alias["alias"])
        elif version:
            mv = client.get_model_version(version["name"], version["version"])
        elif run:
            run_id = run["run_id"]
            return UNREGISTERED, UNREGISTERED, run_id, _run_commit(client, run_id)
        else:
            return UNREGISTERED, UNREGISTERED, "", "unknown"
    except MlflowException as error:
        raise RegistryError(
            f"{model_uri}: not found in the registry at {_tracking_uri()} ({error.message}); "
            "see its versions and aliases in the MLflow UI (`modelops where`), or give "
            "models:/<name>/<version> (before the first deploy there is no champion yet: "
            "use the challenger)"
        ) from error
    run_id = mv.run_id or ""
    commit = (mv.tags or {}).get("git_commit") or (_run_commit(client, run_id) if run_id else "")
    return mv.name, str(mv.version), run_id, commit or "unknown"


def _tracking_uri() -> str:
    import mlflow

    return str(mlflow.get_tracking_uri())


def export_model(model_uri: str, out_dir: Path, force: bool = False) -> ExportInfo:
    """Download `model_uri` (models:/name@alias, models:/name/N, runs:/..., or a local
    folder) into `out_dir` and write its provenance to export.json."""
    import mlflow

    from modelops.tracking import TrackingSettings

    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        raise Refused(f"{out_dir} exists and is not empty; pass --force to replace it")
    local = Path(model_uri[len("file://") :] if model_uri.startswith("file://") else model_uri)
    is_local = model_uri.startswith("file://") or ":/" not in model_uri
    if is_local and not (local / "MLmodel").is_file():
        raise Refused(f"{model_uri}: not an MLflow model folder (no MLmodel) nor a models:/ URI")
    mlflow.set_tracking_uri(TrackingSettings().tracking_uri)
    name, version, run_id, commit = (
        (UNREGISTERED, UNREGISTERED, "", "unknown") if is_local else _identity(model_uri)
    )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=out_dir.parent))
    try:
        target = staging / "model"
        if is_local:
            shutil.copytree(local, target)
        else:
            downloaded = mlflow.artifacts.download_artifacts(
                artifact_uri=model_uri, dst_path=str(staging / "download")
            )
            shutil.move(downloaded, target)
        if not (target / "MLmodel").is_file():
            raise Refused(f"{model_uri}: the download holds no MLmodel file; is it a model?")
        if not (target / "extra_files" / "reference.json").is_file():
            raise Refused(
                f"{model_uri}: no extra_files/reference.json; the service needs the reference "
                "bins that `modelops train` saves with the model (retrain it)"
            )
        if not run_id:
            mlmodel = (target / "MLmodel").read_text()
            found = re.search(r"^run_id:\s*(\S+)", mlmodel, re.MULTILINE)
            run_id = found.group(1) if found else ""
        prior = target / EXPORT_FILE
        if is_local and prior.is_file():  # re-exporting an export keeps its provenance
            known = json.loads(prior.read_text())
            name, version = known.get("model_name", name), known.get("model_version", version)
            run_id, commit = known.get("run_id", run_id), known.get("git_commit", commit)
        info = ExportInfo(
            model_name=name,
            model_version=version,
            run_id=run_id,
            git_commit=commit,
            source_uri=model_uri,
            exported_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        prior.write_text(json.dumps(asdict(info), indent=2) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        target.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return info
