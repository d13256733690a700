"""MLflow model registry: aliases (champion, challenger), registration and lookups."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CHAMPION = "champion"
CHALLENGER = "challenger"


@dataclass(frozen=True)
class VersionRef:
    name: str
    version: str
    run_id: str
    source: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def _client() -> Any:
    from mlflow import MlflowClient

    return MlflowClient()


def _not_found(error: Exception) -> bool:
    code = getattr(error, "error_code", "")
    return code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND") or "not found" in str(error).lower()


def version_by_alias(name: str, alias: str) -> VersionRef | None:
    """The version behind an alias, or None when the model or the alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        mv = _client().get_model_version_by_alias(name, alias)
    except MlflowException as error:
        if _not_found(error) or "alias" in str(error).lower():
            return None
        raise
    return VersionRef(mv.name, str(mv.version), mv.run_id or "", mv.source or "")


def versions_for_run(name: str, run_id: str) -> list[VersionRef]:
    """Registered versions of `name` created from the given run."""
    found = _client().search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    return [VersionRef(mv.name, str(mv.version), mv.run_id, mv.source) for mv in found]


def register_version(
    name: str, model_uri: str, run_id: str, tags: dict[str, str], aliases: list[str]
) -> tuple[VersionRef, bool]:
    """Register model_uri under name unless this run already has a version; set tags and aliases.

    Returns the version and whether it was newly created.
    """
    import mlflow

    existing = versions_for_run(name, run_id)
    client = _client()
    if existing:
        ref, created = existing[0], False
    else:
        mv = mlflow.register_model(model_uri, name, tags=tags)
        ref, created = VersionRef(mv.name, str(mv.version), run_id, mv.source or ""), True
    for alias in aliases:
        client.set_registered_model_alias(name, alias, ref.version)
    return ref, created


def set_alias(name: str, alias: str, version: str) -> None:
    _client().set_registered_model_alias(name, alias, version)


def tag_version(name: str, version: str, tags: dict[str, str]) -> None:
    client = _client()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


# Deploy bookkeeping: which image carries a version, who was champion before, rejections.
IMAGE = "image"  # model-version tag: the image (pinned by digest) that serves this version
PREVIOUS_CHAMPION = "previous_champion"  # model-version tag: champion before this one
REJECTED = "rejected"  # model-version tag: why a canary of this version was rolled back


def version_tags(name: str, version: str) -> dict[str, str]:
    """Tags of one model version; RegistryError naming the version when it does not exist."""
    from mlflow.exceptions import MlflowException

    from modelops.errors import RegistryError

    try:
        mv = _client().get_model_version(name, version)
    except MlflowException as error:
        if _not_found(error):
            raise RegistryError(
                f"models:/{name}/{version} is not in the registry at {_tracking_uri()}: check "
                "the model name and version (and MLFLOW_TRACKING_URI)"
            ) from None
        raise
    return dict(mv.tags or {})


def move_champion(name: str, version: str) -> str | None:
    """Point `champion` at `version`, recording the one it replaces on `version`.

    Idempotent: when `version` already is champion nothing changes (its record stays).
    Returns the previous champion's version (None on a first deploy).
    """
    current = version_by_alias(name, CHAMPION)
    version_tags(name, version)  # the version must exist before anything moves
    if current is not None and current.version == version:
        return version_tags(name, version).get(PREVIOUS_CHAMPION)
    if current is not None:
        tag_version(name, version, {PREVIOUS_CHAMPION: current.version})
    set_alias(name, CHAMPION, version)
    return None if current is None else current.version


def _tracking_uri() -> str:
    import mlflow

    return str(mlflow.get_tracking_uri())
