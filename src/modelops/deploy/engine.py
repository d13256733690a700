"""The container engine that builds, pushes, pulls and runs the service image.

Podman (with buildah underneath) where there is no Docker daemon, as on this project's CI
machine and many laptops; Docker (`docker buildx`) where there is one. `MODELOPS_ENGINE`
chooses; otherwise podman if installed, else docker.

Podman gets its own containers.conf (`CONTAINERS_CONF`, written under the cache folder): the
`runc` runtime (crun refuses hosts with hybrid cgroups) and default ulimits within the host's
hard limits (podman's defaults ask for more than an unprivileged or nested host grants, and
the container fails to start). Builds and runs use the host network, and a build sees the
host's pip configuration, CA bundle and local package indexes read-only (`pip_mounts`), so
`pip install` inside reaches the index the way the host does, without baking any of it into
a layer.
"""

from __future__ import annotations

import configparser
import fcntl
import json
import os
import re
import resource
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelops.errors import ModelopsError

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "modelops" / "image"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_PIP_FILES = ("/etc/xdg/pip/pip.conf", "/etc/pip.conf", "~/.pip/pip.conf", "~/.config/pip/pip.conf")


class EngineError(ModelopsError, RuntimeError):
    """A container engine command failed; the message has its output's last lines."""


@dataclass(frozen=True)
class Engine:
    """One container engine CLI (`podman` or `docker`) and the environment it runs with."""

    name: str
    env: dict[str, str] = field(default_factory=dict)

    def run(
        self, *args: str, check: bool = True, timeout: float = 1800
    ) -> subprocess.CompletedProcess[str]:
        """`<engine> args...`; a failure raises EngineError with the command's last output."""
        done = subprocess.run(
            [self.name, *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
            raise EngineError(f"`{self.name} {' '.join(args[:3])} ...` failed:\n{tail}")
        return done

    def exists(self, ref: str) -> bool:
        """The image is in the engine's local storage."""
        return self.run("image", "inspect", ref, check=False).returncode == 0

    def build(
        self,
        context: Path,
        tags: Sequence[str],
        build_args: dict[str, str],
        dockerfile: Path | None = None,
        mounts: Sequence[str] = (),
    ) -> str:
        """Build `context` (its Dockerfile unless given); returns the image id."""
        args = ["build", "--network=host"]
        # podman: Docker-format images keep HEALTHCHECK (OCI image configs have no such field)
        args += ["--format=docker"] if self.name == "podman" else ["--load"]
        iidfile = CACHE / f"iid-{os.getpid()}"
        iidfile.parent.mkdir(parents=True, exist_ok=True)
        args += ["--iidfile", str(iidfile), "-f", str(dockerfile or Path(context) / "Dockerfile")]
        for name, value in build_args.items():
            args += ["--build-arg", f"{name}={value}"]
        for tag in tags:
            args += ["-t", tag]
        for mount in mounts:
            args += ["--volume", mount]
        if self.name == "docker":
            args = ["buildx", *args]
        # One build at a time per machine: a second build of the same layers then reuses the
        # first's cache instead of repeating its pip install alongside it.
        with (CACHE / "build.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.run(*args, str(context))
        image_id = iidfile.read_text().strip().removeprefix("sha256:")
        iidfile.unlink()
        return image_id

    def push(self, ref: str, insecure: bool = False) -> str:
        """Push `ref` (name:tag) and return the manifest digest the registry stored."""
        if self.name == "docker":
            self.run("push", ref)
            digests = self.inspect(ref).get("RepoDigests", [])
            name = ref.rsplit(":", 1)[0]
            found = [d.split("@", 1)[1] for d in digests if d.startswith(name + "@")]
            if not found:
                raise EngineError(f"docker push {ref} reported no digest")
            return str(found[0])
        digestfile = CACHE / f"digest-{os.getpid()}"
        digestfile.parent.mkdir(parents=True, exist_ok=True)
        tls = ["--tls-verify=false"] if insecure else []
        self.run("push", *tls, "--digestfile", str(digestfile), ref)
        digest = digestfile.read_text().strip()
        digestfile.unlink()
        if not _DIGEST.fullmatch(digest):
            raise EngineError(f"podman push {ref} wrote {digest!r}, not a sha256 digest")
        return digest

    def pull(self, ref: str, insecure: bool = False) -> str:
        """Pull `ref` (by digest or tag); returns the local image id."""
        tls = ["--tls-verify=false"] if insecure and self.name == "podman" else []
        self.run("pull", "-q", *tls, ref)
        return str(self.inspect(ref)["Id"])

    def inspect(self, ref: str) -> dict[str, Any]:
        """`image inspect` of one image."""
        (info,) = json.loads(self.run("image", "inspect", ref).stdout)
        return dict(info)

    def healthcheck_command(self, ref: str) -> list[str]:
        """The image's HEALTHCHECK test, e.g. ["CMD", "python", ...] ([] when none)."""
        info = self.inspect(ref)
        # podman reports it beside Config, docker inside it
        check = info.get("Healthcheck") or info.get("Config", {}).get("Healthcheck") or {}
        return list(check.get("Test") or [])

    def start(
        self,
        ref: str,
        name: str,
        env: dict[str, str] | None = None,
        volumes: Sequence[str] = (),
        tmpfs: Sequence[str] = (),
    ) -> str:
        """Run `ref` detached the way production should: read-only root filesystem, no
        capabilities, no privilege gain, host network (MODELOPS_PORT picks the port);
        `volumes` and `tmpfs` mounts are the only writable places. Returns the container id."""
        args = ["run", "-d", "--name", name, "--network=host", "--read-only", "--cap-drop=all"]
        # /tmp: the metrics' multiprocess folder (podman mounts it with --read-only; docker not)
        args += ["--security-opt=no-new-privileges", "--tmpfs", "/tmp"]
        for key, value in (env or {}).items():
            args += ["-e", f"{key}={value}"]
        for volume in volumes:
            args += ["--volume", volume]
        for mount in tmpfs:
            args += ["--tmpfs", mount]
        return self.run(*args, ref).stdout.strip()

    def healthcheck(self, container: str) -> subprocess.CompletedProcess[str]:
        """Run the image's HEALTHCHECK command in the container (exit 0 = healthy)."""
        image = json.loads(self.run("inspect", container).stdout)[0]["Image"]
        test = self.healthcheck_command(image)
        if not test or test[0] not in ("CMD", "CMD-SHELL"):
            raise EngineError(f"the image of {container} has no HEALTHCHECK command")
        command = test[1:] if test[0] == "CMD" else ["/bin/sh", "-c", test[1]]
        return self.run("exec", container, *command, check=False)

    def stop(self, container: str, timeout_s: int = 20) -> int:
        """SIGTERM, then SIGKILL after `timeout_s`; returns the container's exit code."""
        self.run("stop", "-t", str(timeout_s), container)
        state = json.loads(self.run("inspect", container).stdout)[0]["State"]
        return int(state["ExitCode"])

    def remove(self, *containers: str) -> None:
        """Remove containers (running ones are killed); missing ones are ignored."""
        self.run("rm", "-f", *containers, check=False)


def detect(choice: str | None = None) -> Engine:
    """The engine named by `choice` or MODELOPS_ENGINE, else podman, else docker."""
    name = choice or os.environ.get("MODELOPS_ENGINE", "")
    if not name:
        name = "podman" if shutil.which("podman") else "docker" if shutil.which("docker") else ""
    if name not in ("podman", "docker") or not shutil.which(name):
        raise EngineError(
            f"no container engine {name or '(podman or docker)'} found: install podman "
            "(`make system-deps`) or Docker, or set MODELOPS_ENGINE"
        )
    if name == "docker":
        return Engine("docker")
    return Engine("podman", {"CONTAINERS_CONF": str(containers_conf())})


def containers_conf(folder: Path = CACHE) -> Path:
    """A containers.conf for this host: runc, and ulimits the host's hard limits allow."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    # Above kernel.pid_max runc's setrlimit is refused on some hosts.
    pid_file = Path("/proc/sys/kernel/pid_max")
    pid_max = int(pid_file.read_text()) if pid_file.is_file() else 0
    limits = [n for n in (nproc, pid_max) if n not in (0, resource.RLIM_INFINITY)]
    nproc = min(limits) if limits else 4096
    nofile = 1048576 if nofile == resource.RLIM_INFINITY else nofile
    text = (
        "# Written by modelops.deploy.engine for this host; see that module.\n"
        "[containers]\n"
        f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
        "[engine]\n"
        'runtime = "runc"\n'
    )
    path = folder / "containers.conf"
    if not path.is_file() or path.read_text() != text:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}")
        tmp.write_text(text)
        tmp.replace(path)
    return path


def pip_mounts(folder: Path = CACHE) -> list[str]:
    """Read-only volumes that give a build's `pip install` the host's pip settings.

    The host's pip configuration files and PIP_* variables are merged into one pip.conf
    (mounted as /etc/pip.conf), and every local file or folder it names (CA bundle,
    constraints, find-links, file:// indexes) is mounted at the same path.
    """
    config = configparser.ConfigParser(interpolation=None)
    files = [os.path.expanduser(f) for f in _PIP_FILES]
    if os.environ.get("PIP_CONFIG_FILE"):
        files.append(os.environ["PIP_CONFIG_FILE"])
    config.read([f for f in files if os.path.isfile(f)])
    if not config.has_section("global"):
        config.add_section("global")
    for key, value in os.environ.items():
        if key.startswith("PIP_") and key != "PIP_CONFIG_FILE":
            config.set("global", key[4:].lower().replace("_", "-"), value)
    paths: set[str] = set()
    for section in config.sections():
        for _, value in config.items(section):
            for token in value.split():
                local = token.removeprefix("file://").rstrip("/")
                if local.startswith("/") and os.path.exists(local):
                    # a file:// simple index links to ../files: mount the index's parent
                    paths.add(
                        os.path.realpath(
                            os.path.dirname(local) if local.endswith("/simple") else local
                        )
                    )
    merged = folder / "pip.conf"
    folder.mkdir(parents=True, exist_ok=True)
    with merged.open("w", encoding="utf-8") as handle:
        config.write(handle)
    return [f"{merged}:/etc/pip.conf:ro", *(f"{p}:{p}:ro" for p in sorted(paths))]
