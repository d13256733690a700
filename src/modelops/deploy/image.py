"""The image a deploy builds: its name, tags and build arguments, from an exported model.

`modelops image-plan` reads the export.json that `modelops export-model` wrote and prints
what docker/build-push-action takes (as step outputs): the repository (lower case, as
container registries require), one tag per model version and one per git commit, and the
Dockerfile's build arguments. The digest the push returns is what the deploy pins.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from modelops.errors import Refused

_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_COMMIT = re.compile(r"^[0-9a-f]{7,40}$")
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class ImagePlan:
    """What to build and push: `image` has no tag; `tags` are full references."""

    image: str
    tags: list[str]
    build_args: dict[str, str]

    def to_outputs(self) -> str:
        """GitHub step-output lines; multi-line values in the `name<<DELIMITER` form."""
        delimiter = f"EOF_{secrets.token_hex(8)}"
        args = "\n".join(f"{k}={v}" for k, v in self.build_args.items())
        return (
            f"image={self.image}\n"
            f"tags<<{delimiter}\n" + "\n".join(self.tags) + f"\n{delimiter}\n"
            f"build-args<<{delimiter}\n{args}\n{delimiter}\n"
        )


def plan_image(model_dir: Path, registry: str, repository: str, commit: str) -> ImagePlan:
    """The plan for the model exported to `model_dir`, built from the code at `commit`."""
    if not _REPOSITORY.match(repository):
        raise Refused(f"repository {repository!r} is not owner/name (use $GITHUB_REPOSITORY)")
    if not _COMMIT.match(commit):
        raise Refused(f"commit {commit!r} is not a git commit hash (use $GITHUB_SHA)")
    export = Path(model_dir) / "export.json"
    try:
        info = json.loads(export.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Refused(
            f"{export} not found: run `modelops export-model --out {model_dir}` first"
        ) from None
    name, version = str(info["model_name"]), str(info["model_version"])
    image = f"{registry.rstrip('/')}/{repository.lower()}"
    version_tag = _TAG_UNSAFE.sub("-", f"{name}-v{version}")[:128]
    tags = [f"{image}:{version_tag}", f"{image}:sha-{commit[:12]}"]
    build_args = {
        "MODEL_DIR": str(model_dir),
        "MODEL_NAME": name,
        "MODEL_VERSION": version,
        "MODEL_RUN_ID": str(info.get("run_id", "")),
        "GIT_COMMIT": commit,
        "IMAGE_TAG": version_tag,
    }
    return ImagePlan(image, tags, build_args)
