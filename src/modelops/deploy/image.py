"""The image a deploy builds: its name, tags and build arguments, from an exported model.

`modelops deploy image-plan` reads the export.json that `modelops export-model` wrote and prints
what docker/login-action and docker/build-push-action take (as step outputs): the registry
host, the image name (`ghcr.io/<owner>/<repo>` in lower case, as registries require, unless
another name is given), one tag per model version and one per git commit, and the
Dockerfile's build arguments. The digest the push returns is what the deploy pins.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from modelops.deploy.gitops import REGISTRY_HOST, REPOSITORY_PATH
from modelops.errors import Refused
from modelops.registry.export import EXPORT_FILE

_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
# The image part of gitops.IMAGE_PATTERN: host and lower-case path; no tag, no digest.
_IMAGE_NAME = re.compile(rf"^(?P<host>{REGISTRY_HOST}){REPOSITORY_PATH}$")
_COMMIT = re.compile(r"^[0-9a-f]{7,40}$")
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class ImagePlan:
    """What to build and push: `image` has no tag; `tags` are full references."""

    registry: str
    image: str
    tags: list[str]
    build_args: dict[str, str]

    def to_outputs(self) -> str:
        """GitHub step-output lines; multi-line values in the `name<<DELIMITER` form."""
        delimiter = f"EOF_{secrets.token_hex(8)}"
        args = "\n".join(f"{k}={v}" for k, v in self.build_args.items())
        return (
            f"registry={self.registry}\nimage={self.image}\n"
            f"model_version={self.build_args['MODEL_VERSION']}\n"
            f"tags<<{delimiter}\n" + "\n".join(self.tags) + f"\n{delimiter}\n"
            f"build-args<<{delimiter}\n{args}\n{delimiter}\n"
        )


def plan_image(
    model_dir: Path, registry: str, repository: str, commit: str, image_name: str = ""
) -> ImagePlan:
    """The plan for the model exported to `model_dir`, built from the code at `commit`.

    The image is `<registry>/<repository>` in lower case, or `image_name` when given
    (another registry or name: host[:port]/path, lower case, no tag).
    """
    if image_name:
        named = _IMAGE_NAME.match(image_name)
        if not named:
            raise Refused(
                f"image name {image_name!r} is not host/path in lower case without a tag, "
                "e.g. registry.example.com/team/credit-scoring"
            )
        registry, image = named["host"], image_name
    elif not _REPOSITORY.match(repository):
        raise Refused(f"repository {repository!r} is not owner/name (use $GITHUB_REPOSITORY)")
    else:
        registry = registry.rstrip("/")
        image = f"{registry}/{repository.lower()}"
    if not _COMMIT.match(commit):
        raise Refused(f"commit {commit!r} is not a git commit hash (use $GITHUB_SHA)")
    export = Path(model_dir) / EXPORT_FILE
    try:
        info = json.loads(export.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Refused(
            f"{export} not found: run `modelops export-model --out {model_dir}` first"
        ) from None
    name, version = str(info["model_name"]), str(info["model_version"])
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
    return ImagePlan(registry, image, tags, build_args)
