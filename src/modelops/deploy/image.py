"""The image a deploy builds: its name, tags and build arguments, from an exported model.

`modelops deploy image-plan` reads the export.json that `modelops export-model` wrote and prints
what docker/login-action and docker/build-push-action take (as step outputs): the registry
host, the image name (`ghcr.io/<owner>/<repo>` in lower case, as registries require, unless
another name is given), one tag per model version and one per git commit, and the
Dockerfile's build arguments. The digest the push returns is what the deploy pins.

`build_image` and `push_image` do the same with a local container engine (deploy/engine.py:
podman or docker): `make image` and `make push`, and the tests, build and push for real.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelops.deploy.gitops import REGISTRY_HOST, REPOSITORY_PATH
from modelops.errors import Refused
from modelops.registry.export import EXPORT_FILE

if TYPE_CHECKING:
    from modelops.deploy.engine import Engine

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
        "SERVE_EXTRAS": serve_extras(Path(model_dir)),
        "MODEL_NAME": name,
        "MODEL_VERSION": version,
        "MODEL_RUN_ID": str(info.get("run_id", "")),
        "GIT_COMMIT": commit,
        "IMAGE_TAG": version_tag,
    }
    return ImagePlan(registry, image, tags, build_args)


# What export-model recorded about the predictor (serving/compiled.py writes it).
PREDICTOR_MANIFEST = Path("fast_path") / "predictor.json"


def serve_extras(model_dir: Path) -> str:
    """The pyproject extras the image needs for this model: `serve` when the export compiled
    and checked the fast path, plus `serve-sklearn` when it chose sklearn or recorded
    nothing (an export made before the fast path was compiled at export)."""
    try:
        kind = json.loads((model_dir / PREDICTOR_MANIFEST).read_text(encoding="utf-8"))["kind"]
    except (FileNotFoundError, KeyError, json.JSONDecodeError):
        kind = "sklearn"
    return "serve" if kind != "sklearn" else "serve,serve-sklearn"


@dataclass(frozen=True)
class Pushed:
    """An image in a registry: `image` (no tag) and the manifest `digest` it returned."""

    image: str
    digest: str
    tags: list[str]

    @property
    def ref(self) -> str:
        """The reference a deploy pins: image@sha256:..."""
        return f"{self.image}@{self.digest}"

    def to_outputs(self) -> str:
        return f"image={self.image}\ndigest={self.digest}\nref={self.ref}\n"


def is_local_registry(registry: str) -> bool:
    """A registry on the loopback speaks plain HTTP (the one `make registry` starts)."""
    host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
    return host in ("localhost", "127.0.0.1") or host.startswith("127.")


def build_image(
    plan: ImagePlan, engine: Engine, context: Path, python_image: str = "", **extra: str
) -> str:
    """Build the Dockerfile in `context` with the plan's tags and build arguments (and
    PYTHON_IMAGE when given); returns the local image id."""
    from modelops.deploy.engine import pip_mounts

    args = dict(plan.build_args)
    if python_image:
        args["PYTHON_IMAGE"] = python_image
    args.update(extra)
    model = Path(context) / args["MODEL_DIR"]
    if not (model / EXPORT_FILE).is_file():
        raise Refused(
            f"{model} holds no exported model (no {EXPORT_FILE}); run `make export-model` "
            "(modelops export-model) first; MODEL_DIR is relative to the build context"
        )
    mounts = pip_mounts() if engine.name == "podman" else []
    return engine.build(context, plan.tags, args, mounts=mounts)


def push_image(plan: ImagePlan, engine: Engine) -> Pushed:
    """Push every tag of the plan; the digest is the one the registry returned (the same
    manifest for every tag)."""
    insecure = is_local_registry(plan.registry)
    digests = {engine.push(tag, insecure=insecure) for tag in plan.tags}
    if len(digests) != 1:
        raise Refused(f"the tags of {plan.image} were pushed as different manifests: {digests}")
    return Pushed(plan.image, digests.pop(), list(plan.tags))
