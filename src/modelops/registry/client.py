"""The one door to MLflow: `RegistryClient` holds an explicit `MlflowClient` for one tracking URI.

Everything the product asks of the registry goes through it: register a version, aliases and
tags, resolve `models:/name@alias` or a version number, download a model, the timeline of a
model's versions, and the runs that training logged. Nothing here touches MLflow's
process-wide tracking URI, so two clients for two stores can live in one process.

`open_registry(settings)` is how commands get one: it applies the HTTP retry budget and
checks that the tracking server answers, so an unreachable MLflow fails in seconds with one
line naming the URI and the cause instead of retrying for minutes.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from modelops.errors import RegistryError, RegistryUnreachable

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from modelops.registry.tracking import TrackingSettings

CHAMPION = "champion"
CHALLENGER = "challenger"

# Deploy bookkeeping on model-version tags.
IMAGE = "image"  # the image (pinned by digest) that serves this version
PREVIOUS_CHAMPION = "previous_champion"  # champion before this one (the rollback chain)
REJECTED = "rejected"  # why a canary of this version was rolled back

# Default ports of the network stores MLflow takes as a tracking URI.
_DEFAULT_PORTS = {"http": 80, "https": 443, "postgresql": 5432, "mysql": 3306, "mssql": 1433}


@dataclass(frozen=True)
class VersionRef:
    """One registered model version."""

    name: str
    version: str
    run_id: str
    source: str
    tags: dict[str, str] = field(default_factory=dict, compare=False)
    aliases: tuple[str, ...] = field(default=(), compare=False)
    created_at: int = field(default=0, compare=False)  # epoch milliseconds

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def _not_found(error: Exception) -> bool:
    code = getattr(error, "error_code", "")
    return code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND") or "not found" in str(error).lower()


def _ref(mv: Any) -> VersionRef:
    return VersionRef(
        name=mv.name,
        version=str(mv.version),
        run_id=mv.run_id or "",
        source=mv.source or "",
        tags=dict(mv.tags or {}),
        aliases=tuple(getattr(mv, "aliases", None) or ()),
        created_at=int(mv.creation_timestamp or 0),
    )


def parse_model_uri(uri: str) -> tuple[str, str]:
    """('name', 'alias') of models:/name@alias or ('name', '3') of models:/name/3."""
    rest = uri.removeprefix("models:/")
    if rest == uri or not rest:
        raise RegistryError(f"{uri!r} is not a models:/<name>@<alias> or models:/<name>/<n> URI")
    if "@" in rest:
        name, alias = rest.split("@", 1)
        return name, alias
    name, _, version = rest.rpartition("/")
    if not name or not version.isdigit():
        raise RegistryError(f"{uri!r}: give models:/<name>@<alias> or models:/<name>/<version>")
    return name, version


class RegistryClient:
    """The MLflow registry and tracking store at one URI."""

    def __init__(self, tracking_uri: str, client: MlflowClient | None = None) -> None:
        from mlflow import MlflowClient

        self.tracking_uri = tracking_uri
        self._client = client or MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    @property
    def mlflow(self) -> MlflowClient:
        """The underlying `MlflowClient`, for what this class does not wrap."""
        return self._client

    # Lookups -------------------------------------------------------------------------------

    def version(self, name: str, version: str) -> VersionRef:
        """One version; RegistryError naming it (and the store) when it does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            return _ref(self._client.get_model_version(name, version))
        except MlflowException as error:
            if _not_found(error):
                raise RegistryError(
                    f"models:/{name}/{version} is not in the registry at {self.tracking_uri}: "
                    "check the model name and version (and MLFLOW_TRACKING_URI)"
                ) from None
            raise

    def version_by_alias(self, name: str, alias: str) -> VersionRef | None:
        """The version behind an alias, or None when the model or the alias does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            return _ref(self._client.get_model_version_by_alias(name, alias))
        except MlflowException as error:
            if _not_found(error) or "alias" in str(error).lower():
                return None
            raise

    def version_tags(self, name: str, version: str) -> dict[str, str]:
        return self.version(name, version).tags

    def resolve(self, name: str, spec: str) -> str | None:
        """A version number (checked to exist) or the version behind an alias (None if unset)."""
        if spec.isdigit():
            return self.version(name, spec).version
        found = self.version_by_alias(name, spec)
        return None if found is None else found.version

    def resolve_uri(self, uri: str) -> VersionRef:
        """The version behind models:/name@alias or models:/name/N; RegistryError if none."""
        name, spec = parse_model_uri(uri)
        if spec.isdigit():
            return self.version(name, spec)
        found = self.version_by_alias(name, spec)
        if found is None:
            raise RegistryError(
                f"{uri}: not found in the registry at {self.tracking_uri}: no version of {name} "
                f"has alias {spec!r} ("
                "before the first deploy there is no champion yet: use the challenger, or give "
                "models:/<name>/<version>)"
            )
        return found

    def versions_for_run(self, name: str, run_id: str) -> list[VersionRef]:
        """Registered versions of `name` created from the given run."""
        found = self._client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
        return [_ref(mv) for mv in found]

    def history(self, name: str) -> list[VersionRef]:
        """Every version of `name`, oldest first, with its tags and aliases."""
        found = self._client.search_model_versions(f"name = '{name}'")
        refs = [self.version(name, str(mv.version)) for mv in found]  # search omits aliases
        return sorted(refs, key=lambda ref: int(ref.version))

    # Writes --------------------------------------------------------------------------------

    def register(
        self, name: str, model_uri: str, run_id: str, tags: dict[str, str], aliases: list[str]
    ) -> tuple[VersionRef, bool]:
        """Register `model_uri` under `name` unless this run already has a version; then set
        tags' aliases. Returns the version and whether it was newly created (idempotent)."""
        from mlflow.exceptions import MlflowException

        existing = self.versions_for_run(name, run_id)
        if existing:
            ref, created = existing[0], False
        else:
            try:
                self._client.create_registered_model(name)
            except MlflowException as error:
                if "already exists" not in str(error).lower():
                    raise
            model_id = (
                model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
            )
            mv = self._client.create_model_version(
                name, model_uri, run_id=run_id, tags=tags, model_id=model_id
            )
            ref, created = _ref(mv), True
        for alias in aliases:
            self.set_alias(name, alias, ref.version)
        return ref, created

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self._client.set_registered_model_alias(name, alias, version)

    def tag_version(self, name: str, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self._client.set_model_version_tag(name, version, key, value)

    def move_champion(self, name: str, version: str) -> str | None:
        """Point `champion` at `version`, recording the one it replaces on `version`.

        Idempotent: when `version` already is champion nothing changes (its record stays).
        Returns the previous champion's version (None on a first deploy).
        """
        current = self.version_by_alias(name, CHAMPION)
        tags = self.version_tags(name, version)  # the version must exist before anything moves
        if current is not None and current.version == version:
            return tags.get(PREVIOUS_CHAMPION)
        if current is not None:
            self.tag_version(name, version, {PREVIOUS_CHAMPION: current.version})
        self.set_alias(name, CHAMPION, version)
        return None if current is None else current.version

    # Artifacts and runs --------------------------------------------------------------------

    def download(self, artifact_uri: str, dst: Path) -> Path:
        """Download a model or artifact (models:/..., runs:/..., a store URI) into `dst`."""
        import mlflow
        from mlflow.exceptions import MlflowException

        dst.mkdir(parents=True, exist_ok=True)
        try:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=self._storage_uri(artifact_uri),
                dst_path=str(dst),
                tracking_uri=self.tracking_uri,
                registry_uri=self.tracking_uri,
            )
        except (MlflowException, OSError) as error:
            raise RegistryError(
                f"{artifact_uri}: cannot be fetched from the MLflow store {self.tracking_uri} "
                f"({error}); check the model name and alias/version, and MLFLOW_TRACKING_URI"
            ) from error
        return Path(local)

    def _storage_uri(self, uri: str) -> str:
        """Where the files of a models:/ URI are stored, looked up with this client: MLflow's
        own resolution of models:/ URIs reads the process-wide registry URI instead."""
        if not uri.startswith("models:/"):
            return uri
        first, _, rest = uri.removeprefix("models:/").partition("/")
        if first.startswith("m-"):  # a logged model: models:/m-<id>[/path]
            path = rest
            location = str(self._client.get_logged_model(first).artifact_location)
        else:  # models:/name@alias[/path] or models:/name/N[/path]
            if "@" in first:
                head, path = first, rest
            else:
                version, _, path = rest.partition("/")
                head = f"{first}/{version}"
            ref = self.resolve_uri(f"models:/{head}")
            location = str(self._client.get_model_version_download_uri(ref.name, ref.version))
        return f"{location.rstrip('/')}/{path}" if path else location

    def experiment_id(self, name: str, artifact_location: str | None) -> str:
        """The id of experiment `name`, created (with `artifact_location`) if needed."""
        experiment = self._client.get_experiment_by_name(name)
        if experiment is not None:
            return str(experiment.experiment_id)
        return str(self._client.create_experiment(name, artifact_location=artifact_location))

    def run_exists(self, run_id: str) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            self._client.get_run(run_id)
        except MlflowException as error:
            if _not_found(error):
                return False
            raise
        return True

    def run_tag(self, run_id: str, key: str, default: str = "unknown") -> str:
        """A tag of a run (e.g. git_commit), `default` when the run or tag is missing."""
        from mlflow.exceptions import MlflowException

        try:
            return str(self._client.get_run(run_id).data.tags.get(key, default))
        except MlflowException as error:
            if _not_found(error):
                return default
            raise

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        """Write `text` as the artifact `artifact_file` (e.g. model-card.md) of a run."""
        self._client.log_text(run_id, text, artifact_file)

    def artifact_names(self, run_id: str, folder: str) -> list[str]:
        """Paths of the files directly in `folder` of a run's artifacts (none if absent)."""
        return sorted(f.path for f in self._client.list_artifacts(run_id, folder) if not f.is_dir)

    def read_text(self, run_id: str, artifact_file: str) -> str:
        """The text of one artifact of a run, read through this client's store."""
        import tempfile

        with tempfile.TemporaryDirectory(prefix="modelops-artifact-") as tmp:
            local = self._client.download_artifacts(run_id, artifact_file, tmp)
            return Path(local).read_text(encoding="utf-8")

    def delete_alias(self, name: str, alias: str) -> None:
        self._client.delete_registered_model_alias(name, alias)

    def log_to_run(self, run_id: str, metrics: dict[str, float], artifacts: list[Path]) -> None:
        """Add metrics and files (under evaluation/) to an existing run."""
        for key, value in metrics.items():
            self._client.log_metric(run_id, key, value)
        for path in artifacts:
            self._client.log_artifact(run_id, str(path), artifact_path="evaluation")


def check_reachable(tracking_uri: str, timeout: float) -> None:
    """Raise RegistryUnreachable when a network tracking store does not accept connections.

    Local stores (a SQLite file, a folder) are always reachable. For http(s), PostgreSQL and
    the other network stores, one TCP connection is tried within `timeout` seconds.
    """
    parts = urlsplit(tracking_uri)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return
    port = parts.port or _DEFAULT_PORTS[scheme]
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return
    except OSError as error:
        cause = error.strerror or str(error) or type(error).__name__
        if isinstance(error, TimeoutError | socket.timeout):
            cause = f"no answer within {timeout:g} s"
        shown = (
            tracking_uri.replace(f"{parts.password}@", "***@") if parts.password else tracking_uri
        )
        raise RegistryUnreachable(
            f"MLflow at {shown} is unreachable ({cause}); start the tracking server or point "
            "MLFLOW_TRACKING_URI at one that runs. Nothing was changed in the registry."
        ) from None


def open_registry(settings: TrackingSettings) -> RegistryClient:
    """A client for the configured store, after checking that it answers (fail fast)."""
    settings.apply_http_budget()
    check_reachable(settings.tracking_uri, settings.connect_timeout)
    return RegistryClient(settings.tracking_uri)
