"""Record what a workflow changed in git: commit the files and push them (`publish_paths`).

The deploy and rollback workflows end with `modelops deploy gitops-commit`: whatever the canary
controller or the rollback left in `envs/<env>/deploy.auto.tfvars.json` is what is live, so
git must say so. Nothing to commit is fine (a rolled-back canary leaves the file as it was).
`modelops retrain` commits `dvc.lock` and the pipeline's git-tracked reports the same way.
A push that loses a race with another commit (the other environment's deploy) is rebased
and retried; only the given files changed, so the rebase cannot conflict with anything but a
concurrent change of the same files, which the workflows' concurrency groups forbid.

Credentials: the checkout keeps none (`persist-credentials: false`). For an https remote
on GitHub the token in GITHUB_TOKEN is handed to this one git process through
GIT_CONFIG_* variables (an `http.extraheader`, as actions/checkout does), never written to
disk or put on a command line.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from modelops.deploy.gitops import read_state, state_path
from modelops.errors import ModelopsError

BOT_NAME = "github-actions[bot]"
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"


class PublishError(ModelopsError, RuntimeError):
    """The desired state could not be committed or pushed; the message says what to do."""


@dataclass(frozen=True)
class Published:
    commit: str | None  # None: the file already held this state, nothing committed
    pushed: bool


def _auth_env(remote_url: str, environ: Mapping[str, str]) -> dict[str, str]:
    """GIT_CONFIG_* variables carrying GITHUB_TOKEN for an https remote on the GitHub server."""
    token = environ.get("GITHUB_TOKEN", "")
    server = environ.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    if not token or not remote_url.startswith(server + "/"):
        return {}
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"http.{server}/.extraheader",
        "GIT_CONFIG_VALUE_0": f"AUTHORIZATION: basic {basic}",
    }


class Git:
    """git in one working tree, failing with PublishError and git's own message."""

    def __init__(self, repo: Path, env: Mapping[str, str]) -> None:
        self.repo = repo
        self.env = dict(env)

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["git", *args],
            cwd=self.repo,
            env=self.env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        if check and done.returncode != 0:
            raise PublishError(
                f"git {args[0]} failed: {done.stderr.strip() or done.stdout.strip()}"
            )
        return done


def commit_message(env_dir: Path, reason: str, run_url: str | None) -> str:
    split = read_state(env_dir)  # also proves the file is a valid desired state
    env = env_dir.resolve().name
    if split.canary_image and split.canary_weight:
        live = f"canary {split.canary_model_version} at {split.canary_weight}%"
    elif split.canary_image and split.canary_mirror_percent:
        live = (
            f"stable model version {split.stable_model_version} at 100%, "
            f"{split.canary_mirror_percent}% mirrored to {split.canary_model_version} (shadow)"
        )
    else:
        live = f"stable model version {split.stable_model_version} at 100%"
    body = json.dumps(split.to_json(), indent=2)
    footer = f"\n\nRun: {run_url}" if run_url else ""
    return f"gitops({env}): {live} ({reason})\n\n{body}{footer}\n"


def publish_state(
    env_dir: Path,
    reason: str,
    *,
    push: bool,
    remote: str = "origin",
    branch: str = "main",
    run_url: str | None = None,
    attempts: int = 3,
    environ: Mapping[str, str] = os.environ,
) -> Published:
    """Commit env_dir's desired-state file if it changed; push it to remote/branch if asked."""
    path = state_path(env_dir)
    message = commit_message(env_dir, reason, run_url)
    return publish_paths(
        Path(env_dir),
        [path],
        message,
        push=push,
        remote=remote,
        branch=branch,
        attempts=attempts,
        environ=environ,
    )


def publish_paths(
    where: Path,
    paths: list[Path],
    message: str,
    *,
    push: bool,
    remote: str = "origin",
    branch: str = "main",
    attempts: int = 3,
    environ: Mapping[str, str] = os.environ,
) -> Published:
    """Commit `paths` (files or folders, new files included) if they changed, as the bot, and
    push to remote/branch if asked; `where` is any folder inside the working tree."""
    top = Git(Path(where), environ)("rev-parse", "--show-toplevel").stdout.strip()
    git = Git(Path(top), environ)
    relative = [str(Path(p).resolve().relative_to(Path(top).resolve())) for p in paths]
    git("add", "-A", "--", *relative)
    if git("diff", "--cached", "--quiet", "--", *relative, check=False).returncode == 0:
        return Published(None, False)
    identity = ["-c", f"user.name={BOT_NAME}", "-c", f"user.email={BOT_EMAIL}"]
    git(*identity, "commit", "-q", "-m", message, "--", *relative)
    commit = git("rev-parse", "HEAD").stdout.strip()
    if not push:
        return Published(commit, False)
    url = git("remote", "get-url", remote).stdout.strip()
    git.env.update(_auth_env(url, environ))
    for attempt in range(1, attempts + 1):
        pushed = git("push", "-q", remote, f"HEAD:refs/heads/{branch}", check=False)
        if pushed.returncode == 0:
            return Published(git("rev-parse", "HEAD").stdout.strip(), True)
        if attempt == attempts:
            break
        # Someone else pushed first (the other environment's deploy): replay ours on top.
        git("fetch", "-q", remote, branch)
        rebased = git(*identity, "rebase", "-q", "FETCH_HEAD", check=False)
        if rebased.returncode != 0:
            git("rebase", "--abort", check=False)
            raise PublishError(
                f"{', '.join(relative)} changed on {remote}/{branch} meanwhile and could not be "
                f"rebased ({rebased.stderr.strip()}); check the history and rerun"
            )
    raise PublishError(
        f"git push to {remote} {branch} failed {attempts} times: {pushed.stderr.strip()}. "
        f"The commit {commit} is local only; allow this workflow to push to {branch} "
        "(contents: write, and a branch-protection bypass for GitHub Actions) and rerun"
    )
