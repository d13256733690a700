"""A local Python base image for machines that cannot pull from public registries.

On GitHub the Dockerfile's default base (`python:3.11-slim`, pinned by digest) is pulled. On
a machine that reaches a Debian mirror but no container registry, `local_base` builds an
equivalent with mmdebstrap (Debian bookworm, minbase, python3 + venv + CA certificates, and
a `python` link) and imports it with `podman import`. It is built once per machine: the tag
is a hash of the recipe, so a changed recipe builds anew, and the root filesystem tarball is
kept under ~/.cache/modelops/image so a wiped image store re-imports it in seconds.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from modelops.deploy.engine import CACHE, Engine, EngineError

SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv", "ca-certificates")
_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python3"]',
)
_HOOK = 'ln -sf python3 "$1/usr/bin/python"'
NAME = "localhost/modelops-base"


def recipe() -> list[str]:
    """The mmdebstrap command line (the tarball path is appended)."""
    return [
        "mmdebstrap",
        "--quiet",
        "--variant=minbase",
        f"--include={','.join(PACKAGES)}",
        f"--customize-hook={_HOOK}",
        SUITE,
    ]


def base_tag() -> str:
    """`localhost/modelops-base:<suite>-<hash of the recipe>`."""
    key = hashlib.sha256("\n".join([*recipe(), *_CHANGES]).encode()).hexdigest()[:12]
    return f"{NAME}:{SUITE}-{key}"


def local_base(engine: Engine, cache: Path = CACHE) -> str:
    """The base image's tag, building or importing it first when the engine lacks it.

    Concurrent callers (parallel tests) wait on a lock file; one builds, the others reuse.
    """
    tag = base_tag()
    if engine.exists(tag):
        return tag
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / "base.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if engine.exists(tag):
            return tag
        tarball = cache / f"base-{tag.rsplit(':', 1)[1]}.tar"
        if not tarball.is_file():
            _debootstrap(tarball)
        args = ["import", "--quiet"]
        for change in _CHANGES:
            args += ["--change", change]
        engine.run(*args, str(tarball), tag)
    return tag


def _debootstrap(tarball: Path) -> None:
    if not shutil.which("mmdebstrap"):
        raise EngineError(
            "mmdebstrap is not installed: `make system-deps` installs it (or pass "
            "PYTHON_IMAGE=<a python:3.11 image> to build on a pulled base)"
        )
    partial = tarball.with_suffix(f".partial-{os.getpid()}")
    done = subprocess.run([*recipe(), str(partial)], capture_output=True, text=True)
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        tail = "\n".join(done.stderr.strip().splitlines()[-10:])
        raise EngineError(f"mmdebstrap could not build the base image:\n{tail}")
    partial.replace(tarball)


def resolve_base(choice: str, engine: Engine) -> str:
    """PYTHON_IMAGE for a build: `local` builds (once) the local base; `auto` is `local` with
    podman (machines without a Docker daemon, no public registry assumed) and the
    Dockerfile's default (empty) with docker; anything else is an image reference."""
    if choice == "auto":
        choice = "" if engine.name == "docker" else "local"
    return local_base(engine) if choice == "local" else choice
