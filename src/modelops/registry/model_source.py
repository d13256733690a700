"""Where a model comes from: a local MLflow model folder or a registry URI (models:/name@alias)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from modelops.errors import Refused, RegistryError
from modelops.registry.client import RegistryClient
from modelops.registry.reference import REFERENCE_FILE

REGISTRY_SCHEMES = ("models:/", "runs:/")


def is_registry_uri(spec: str) -> bool:
    return spec.startswith(REGISTRY_SCHEMES)


def _check_folder(path: Path, spec: str) -> Path:
    if not (path / "MLmodel").is_file():
        raise Refused(
            f"{spec}: not an MLflow model folder (no MLmodel file); pass a folder written by "
            "`modelops train` (e.g. models/model) or a registry URI such as "
            "models:/credit-scoring@champion"
        )
    return path


@contextmanager
def local_model(spec: str, registry: RegistryClient | None = None) -> Iterator[Path]:
    """A local model folder for `spec`; registry URIs are downloaded to a temporary folder
    through `registry` (needed for them: RegistryError when missing)."""
    if not is_registry_uri(spec):
        yield _check_folder(Path(spec), spec)
        return
    if registry is None:
        raise RegistryError(f"{spec}: a registry URI needs a tracking store to read it from")
    with tempfile.TemporaryDirectory(prefix="modelops-model-") as tmp:
        yield _check_folder(registry.download(spec, Path(tmp)), spec)


def registry_details(spec: str, registry: RegistryClient) -> dict[str, Any]:
    """Name, version, run and tags of the version behind a models:/ URI; {} for other specs."""
    if not spec.startswith("models:/"):
        return {}
    ref = registry.resolve_uri(spec)
    return {"name": ref.name, "version": ref.version, "run_id": ref.run_id, "tags": ref.tags}


def reference_of(model_dir: Path) -> dict[str, Any]:
    """The reference distributions saved with a model (extra_files/reference.json)."""
    path = model_dir / "extra_files" / REFERENCE_FILE
    if not path.is_file():
        raise Refused(
            f"{model_dir}: no extra_files/{REFERENCE_FILE}; the model was not trained by "
            "`modelops train` (which saves it); retrain, or pass --reference <reference.json>"
        )
    return read_reference(path)


def read_reference(path: Path) -> dict[str, Any]:
    """A reference.json file, checked for the layout `modelops.registry.reference` writes."""
    try:
        reference = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise Refused(f"{path}: not a readable reference JSON ({error})") from error
    if not isinstance(reference, dict) or not isinstance(reference.get("features"), dict):
        raise Refused(
            f"{path}: not a reference file (no 'features' object); pass the "
            f"extra_files/{REFERENCE_FILE} of a model trained by `modelops train`"
        )
    return reference
