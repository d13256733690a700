"""The GitOps desired state of one environment: which images and models are live, at what weight.

Each environment keeps it in `infra/terraform/envs/<env>/deploy.auto.tfvars.json`, a file
terraform loads by itself. This module owns its key set (`KEYS`), the value rules (the same
patterns as the module's variable validations in infra/terraform/modules/model-service), and
atomic reads and writes. Committing the file is the caller's business (the deploy workflow).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from modelops.errors import RouterError

STATE_FILE = "deploy.auto.tfvars.json"

# Registry host (with a dot, or localhost) and optional port; then the repository path.
REGISTRY_HOST = r"(?:localhost|[a-z0-9-]+(?:[.][a-z0-9-]+)+)(?::[0-9]+)?"
REPOSITORY_PATH = r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+"
# An image by host and path, an optional tag, then a mandatory sha256 digest. Identical to
# the regex in the module's variables.tf.
IMAGE_PATTERN = re.compile(
    rf"^{REGISTRY_HOST}{REPOSITORY_PATH}"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?@sha256:[0-9a-f]{64}$"
)
# A model version is used as a Kubernetes label value: at most 63 characters.
MODEL_VERSION_PATTERN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")


@dataclass(frozen=True)
class TrafficSplit:
    """What should be live in one environment. Invalid values raise RouterError on creation."""

    stable_image: str
    stable_model_version: str
    canary_image: str | None = None
    canary_model_version: str | None = None
    canary_weight: int = 0
    # Share of requests copied to the canary (its answers discarded): the shadow phase.
    canary_mirror_percent: int = 0

    def __post_init__(self) -> None:
        problems = split_problems(self)
        if problems:
            raise RouterError("invalid traffic split: " + "; ".join(problems))

    @property
    def stable_weight(self) -> int:
        return 100 - self.canary_weight

    def to_json(self) -> dict[str, Any]:
        """The file's content, keys in KEYS order."""
        return asdict(self)


KEYS: tuple[str, ...] = tuple(f.name for f in fields(TrafficSplit))
OPTIONAL_KEYS = {"canary_mirror_percent": 0}  # files written before the shadow phase lack it


def split_problems(split: TrafficSplit) -> list[str]:
    """Every rule the split breaks, each saying what to use instead (empty when valid)."""
    problems: list[str] = []
    images = {"stable_image": split.stable_image, "canary_image": split.canary_image}
    for key, image in images.items():
        if (key == "stable_image" or image is not None) and not _matches(IMAGE_PATTERN, image):
            problems.append(
                f"{key} {image!r} is not pinned by digest: use a reference like "
                "ghcr.io/owner/repo@sha256:<64 hex>"
            )
    versions = {
        "stable_model_version": split.stable_model_version,
        "canary_model_version": split.canary_model_version,
    }
    for key, version in versions.items():
        if (key == "stable_model_version" or version is not None) and not _matches(
            MODEL_VERSION_PATTERN, version
        ):
            problems.append(f"{key} {version!r} is not 1-63 letters, digits, '.', '_' or '-'")
    if (split.canary_image is None) != (split.canary_model_version is None):
        problems.append("set canary_image and canary_model_version together, or neither")
    weight = split.canary_weight
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
        problems.append(f"canary_weight {weight!r} must be a whole number from 0 to 100")
    elif weight > 0 and split.canary_image is None:
        problems.append(f"canary_weight {weight} needs a canary_image to send that traffic to")
    mirror = split.canary_mirror_percent
    if isinstance(mirror, bool) or not isinstance(mirror, int) or not 0 <= mirror <= 100:
        problems.append(f"canary_mirror_percent {mirror!r} must be a whole number from 0 to 100")
    elif mirror > 0 and split.canary_image is None:
        problems.append(f"canary_mirror_percent {mirror} needs a canary_image to mirror to")
    return problems


def _matches(pattern: re.Pattern[str], value: object) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def state_path(env_dir: Path) -> Path:
    return Path(env_dir) / STATE_FILE


def parse_state(data: object, source: str) -> TrafficSplit:
    """A TrafficSplit from decoded JSON; `source` names the file in error messages."""
    if not isinstance(data, dict):
        raise RouterError(f"{source}: expected a JSON object with keys {list(KEYS)}")
    data = {**OPTIONAL_KEYS, **data}
    missing = [key for key in KEYS if key not in data]
    unknown = sorted(set(data) - set(KEYS))
    if missing or unknown:
        raise RouterError(
            f"{source}: the desired state holds exactly {list(KEYS)}; "
            f"missing {missing}, unknown {unknown}"
        )
    values = {key: data[key] for key in KEYS}
    for key in ("canary_weight", "canary_mirror_percent"):
        number = values[key]
        if isinstance(number, float) and number.is_integer():
            values[key] = int(number)  # JSON 10.0 is 10 for terraform too
    try:
        return TrafficSplit(**values)
    except RouterError as error:
        raise RouterError(f"{source}: {error}") from None


def read_state(env_dir: Path) -> TrafficSplit:
    """The desired state committed for the environment in `env_dir`."""
    path = state_path(env_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RouterError(
            f"no desired state at {path}: create it with the keys {list(KEYS)} "
            "(see infra/terraform/README.md)"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise RouterError(
            f"{path} is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}); "
            "fix it or restore it from git"
        ) from None
    return parse_state(data, str(path))


def render_state(split: TrafficSplit) -> bytes:
    """The exact bytes written for a split: 2-space JSON, KEYS order, final newline."""
    return (json.dumps(split.to_json(), indent=2) + "\n").encode("utf-8")


def write_state(env_dir: Path, split: TrafficSplit) -> Path:
    """Atomically replace the environment's desired-state file with `split`."""
    path = state_path(env_dir)
    write_bytes_atomic(path, render_state(split))
    return path


def write_bytes_atomic(path: Path, content: bytes) -> None:
    """Write via a temporary file in the same folder and rename: readers see old or new, whole."""
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def snapshot(path: Path) -> bytes | None:
    """The file's bytes, or None when it does not exist (see `restore`)."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        return None


def restore(path: Path, previous: bytes | None) -> None:
    """Put back what `snapshot` saw: the same bytes, or no file."""
    if previous is None:
        Path(path).unlink(missing_ok=True)
    else:
        write_bytes_atomic(Path(path), previous)
