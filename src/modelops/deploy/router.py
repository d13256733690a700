"""Routers move live traffic between the stable and the canary track.

The canary controller only talks to the `Router` protocol: `apply(split)` makes a
`TrafficSplit` live (blocking until it is, or raising `RouterError`), `current()` says what
is meant to be live. `TerraformRouter` is the production router: it writes the environment's
GitOps file (see gitops.py) and runs `terraform apply` on infra/terraform/envs/<env>.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from modelops.deploy.gitops import (
    TrafficSplit,
    read_state,
    restore,
    snapshot,
    state_path,
    write_state,
)
from modelops.errors import RouterError

__all__ = [
    "CommandResult",
    "CommandRunner",
    "Router",
    "RouterError",
    "TerraformRouter",
    "TrafficSplit",
    "run_command",
]

log = logging.getLogger(__name__)

STDERR_TAIL_LINES = 25


@runtime_checkable
class Router(Protocol):
    """Sets the weights of one environment."""

    def apply(self, split: TrafficSplit) -> None:
        """Make `split` live; return once it is, raise RouterError (state unchanged) if not."""
        ...

    def current(self) -> TrafficSplit:
        """The split that is meant to be live now."""
        ...


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool = False


class CommandRunner(Protocol):
    def __call__(
        self, argv: Sequence[str], *, env: Mapping[str, str], timeout_s: float
    ) -> CommandResult: ...


def run_command(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    timeout_s: float,
    grace_s: float = 60.0,
) -> CommandResult:
    """Run argv, capturing its output. On timeout send SIGINT, which terraform handles by
    stopping cleanly and releasing the state lock; kill it only if it ignores that for grace_s.
    Raises FileNotFoundError / PermissionError when argv[0] cannot be executed.
    """
    proc = subprocess.Popen(
        list(argv),
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
        return CommandResult(proc.returncode, stdout, stderr)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            stdout, stderr = proc.communicate(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        return CommandResult(proc.returncode, stdout, stderr, timed_out=True)


def _tail(text: str, lines: int = STDERR_TAIL_LINES) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


class TerraformRouter:
    """Moves traffic by rewriting envs/<env>/deploy.auto.tfvars.json and running terraform.

    `apply` validates the split (TrafficSplit does), writes the file atomically, runs
    `terraform -chdir=<env> init` once per router and then `terraform -chdir=<env> apply
    -auto-approve`. If anything fails, the previous file is put back byte for byte and
    RouterError carries the tail of terraform's stderr. terraform may have changed part of
    the cluster before failing; the controller's rollback applies a known-good split.
    """

    def __init__(
        self,
        env_dir: Path,
        *,
        terraform: str = "terraform",
        runner: CommandRunner = run_command,
        timeout_s: float = 1800.0,
        lock_timeout: str = "5m",
    ) -> None:
        env_dir = Path(env_dir).resolve()
        if not env_dir.is_dir() or not any(env_dir.glob("*.tf")):
            raise RouterError(
                f"{env_dir} is not a terraform environment (no *.tf files): "
                "pass a folder such as infra/terraform/envs/staging"
            )
        self.env_dir = env_dir
        self.terraform = terraform
        self.runner = runner
        self.timeout_s = timeout_s
        self.lock_timeout = lock_timeout
        self._initialized = False

    def current(self) -> TrafficSplit:
        return read_state(self.env_dir)

    def apply(self, split: TrafficSplit) -> None:
        if not isinstance(split, TrafficSplit):
            raise RouterError(f"apply() takes a TrafficSplit, got {type(split).__name__}")
        path = state_path(self.env_dir)
        previous = snapshot(path)
        write_state(self.env_dir, split)
        try:
            if not self._initialized:
                self._terraform(self.init_args())
                self._initialized = True
            self._terraform(self.apply_args())
        except BaseException:
            restore(path, previous)
            raise
        log.info(
            "terraform applied %s: stable %s (model %s) %d%%, canary %s (model %s) %d%%",
            self.env_dir.name,
            split.stable_image,
            split.stable_model_version,
            split.stable_weight,
            split.canary_image,
            split.canary_model_version,
            split.canary_weight,
        )

    def init_args(self) -> list[str]:
        args = ["init", "-input=false", "-no-color"]
        if (self.env_dir / "backend.hcl").is_file():
            args.append("-backend-config=backend.hcl")
        return args

    def apply_args(self) -> list[str]:
        return [
            "apply",
            "-input=false",
            "-auto-approve",
            "-no-color",
            f"-lock-timeout={self.lock_timeout}",
        ]

    def _terraform(self, args: list[str]) -> None:
        argv = [self.terraform, f"-chdir={self.env_dir}", *args]
        # Automation mode, never prompt, no version check over the network.
        env = {**os.environ, "TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1"}
        step = args[0]
        try:
            result = self.runner(argv, env=env, timeout_s=self.timeout_s)
        except (FileNotFoundError, PermissionError) as error:
            raise RouterError(
                f"cannot run {self.terraform!r} ({error.strerror or error}): install terraform "
                "(hashicorp/setup-terraform in GitHub Actions) or pass its path as terraform=..."
            ) from None
        for line in result.stdout.splitlines():
            log.info("terraform %s: %s", step, line)
        if result.timed_out:
            raise RouterError(
                f"terraform {step} in {self.env_dir} did not finish within {self.timeout_s:g}s "
                "and was interrupted; the desired-state file was restored. If a state lock "
                "is left, release it with `terraform force-unlock`.\n" + _tail(result.stderr)
            )
        if result.returncode != 0:
            raise RouterError(
                f"terraform {step} in {self.env_dir} failed (exit {result.returncode}); "
                "the desired-state file was restored. terraform said:\n" + _tail(result.stderr)
            )
