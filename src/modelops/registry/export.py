"""Export a model version to a plain folder: what the image carries and the service loads.

The folder is the MLflow model itself (MLmodel, model.skops, extra_files/reference.json, ...)
plus `export.json`, which records where it came from (registered name, version, run id,
git commit), so a service running without a registry can still say what it serves, and
`log_redact.json`, the prediction-log redaction policy (`serve.log_redact`,
registry/log_policy.py) the service applies.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from modelops.errors import Refused, RegistryError
from modelops.registry.client import RegistryClient
from modelops.registry.log_policy import LogRedaction, write_policy

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


def _identity(registry: RegistryClient, model_uri: str) -> tuple[str, str, str, str]:
    """(name, version, run_id, git_commit) of a registry or run URI; raises on unknown ones."""
    run = _RUN_URI.match(model_uri)
    if run:
        run_id = run["run_id"]
        return UNREGISTERED, UNREGISTERED, run_id, registry.run_tag(run_id, "git_commit")
    if not (_ALIAS_URI.match(model_uri) or _VERSION_URI.match(model_uri)):
        return UNREGISTERED, UNREGISTERED, "", "unknown"
    ref = registry.resolve_uri(model_uri)
    commit = ref.tags.get("git_commit") or (
        registry.run_tag(ref.run_id, "git_commit") if ref.run_id else ""
    )
    return ref.name, ref.version, ref.run_id, commit or "unknown"


def _signature_inputs(folder: Path) -> list[str]:
    """The input column names of a model folder's MLmodel signature."""
    import yaml

    mlmodel = yaml.safe_load((folder / "MLmodel").read_text()) or {}
    inputs = (mlmodel.get("signature") or {}).get("inputs") or "[]"
    return [str(c.get("name")) for c in json.loads(inputs)]


def export_model(
    model_uri: str,
    out_dir: Path,
    registry: RegistryClient | None = None,
    force: bool = False,
    redaction: LogRedaction | None = None,
) -> ExportInfo:
    """Download `model_uri` (models:/name@alias, models:/name/N, runs:/..., or a local
    folder) into `out_dir`, write its provenance to export.json and, when given, the log
    `redaction` policy to log_redact.json. Registry and run URIs are read through
    `registry` (required for them)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        raise Refused(f"{out_dir} exists and is not empty; pass --force to replace it")
    local = Path(model_uri[len("file://") :] if model_uri.startswith("file://") else model_uri)
    is_local = model_uri.startswith("file://") or ":/" not in model_uri
    if is_local and not (local / "MLmodel").is_file():
        raise Refused(f"{model_uri}: not an MLflow model folder (no MLmodel) nor a models:/ URI")
    if not is_local and registry is None:
        raise RegistryError(f"{model_uri}: exporting from the registry needs a tracking store")
    name, version, run_id, commit = (
        (UNREGISTERED, UNREGISTERED, "", "unknown")
        if is_local or registry is None
        else _identity(registry, model_uri)
    )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=out_dir.parent))
    try:
        target = staging / "model"
        if is_local:
            shutil.copytree(local, target)
        elif registry is not None:
            shutil.move(registry.download(model_uri, staging / "download"), target)
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
        if redaction is not None:
            write_policy(target, redaction, _signature_inputs(target))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        target.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return info
