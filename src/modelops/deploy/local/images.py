"""Local "images": a digest-pinned reference computed from the model folder a service runs.

A TrafficSplit names what is live by image digest, as the cluster does. The rehearsal builds
no container image (no Docker engine is needed), so each service's image is the reference
`localhost/<model name>@sha256:<digest of its model folder>`: the SHA-256 over the folder's
files (MLmodel, the serialized model, reference bins, input example, ...) with their relative
paths, leaving out export.json (it records when the folder was exported, not what it holds)
and fast_path/ (the predictor export-model compiles from the model).
The same model content always gets the same reference, two different models never share one,
and the reference passes the same validation as a real registry image.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from modelops.registry.export import EXPORT_FILE

REGISTRY = "localhost"
# What export-model derives from the model (serving/compiled.py): not part of its identity.
FAST_PATH = "fast_path"


def folder_digest(model_dir: Path) -> str:
    """Hex SHA-256 over every file of the folder except export.json, in path order."""
    digest = hashlib.sha256()
    files = sorted(
        p
        for p in Path(model_dir).rglob("*")
        if p.is_file() and p.name != EXPORT_FILE and FAST_PATH not in p.relative_to(model_dir).parts
    )
    for path in files:
        relative = path.relative_to(model_dir).as_posix().encode()
        content = path.read_bytes()
        digest.update(b"%d:%s:%d:" % (len(relative), relative, len(content)))
        digest.update(content)
    return digest.hexdigest()


def repository_name(model_name: str) -> str:
    """A model name as an image repository path component (lowercase, [a-z0-9] runs joined
    by single '.', '_' or '-')."""
    parts = [p for p in re.split(r"[^a-z0-9]+", model_name.lower()) if p]
    return "-".join(parts) or "model"


def local_image(model_dir: Path, model_name: str) -> str:
    """`localhost/<model name>@sha256:<folder digest>` for the model in `model_dir`."""
    return f"{REGISTRY}/{repository_name(model_name)}@sha256:{folder_digest(model_dir)}"
