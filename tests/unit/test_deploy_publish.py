"""`modelops deploy gitops-commit`: the desired-state file committed and pushed with real git.

The remote is a local bare repository, as the team's GitHub repository would be; a second
clone plays the other environment's deploy pushing first.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest

from modelops.deploy.gitops import TrafficSplit, read_state, write_state
from modelops.deploy.publish import BOT_NAME, PublishError, _auth_env, publish_state

DIGEST = "ghcr.io/acme/credit-scoring@sha256:" + "ab" * 32
NEW = "ghcr.io/acme/credit-scoring@sha256:" + "cd" * 32
ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "dev",
    "GIT_AUTHOR_EMAIL": "dev@example.com",
    "GIT_COMMITTER_NAME": "dev",
    "GIT_COMMITTER_EMAIL": "dev@example.com",
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, env=ENV, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A bare `origin` whose main holds staging and production desired states."""
    seed = tmp_path / "seed"
    for env in ("staging", "production"):
        (seed / "envs" / env).mkdir(parents=True)
        write_state(seed / "envs" / env, TrafficSplit(DIGEST, "1"))
    git(seed, "init", "-q", "-b", "main")
    git(seed, "add", "-A")
    git(seed, "commit", "-qm", "seed")
    bare = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(seed), str(bare))
    return bare


def clone(origin: Path, where: Path) -> Path:
    git(origin.parent, "clone", "-q", str(origin), str(where))
    return where


def test_a_changed_state_is_committed_and_pushed(origin: Path, tmp_path: Path) -> None:
    work = clone(origin, tmp_path / "work")
    write_state(work / "envs/staging", TrafficSplit(NEW, "2"))
    write_state(work / "envs/production", TrafficSplit(NEW, "2"))  # another job's business
    done = publish_state(
        work / "envs/staging", "canary of model version 2", push=True, run_url="https://x/1"
    )
    assert done.pushed and done.commit == git(origin, "rev-parse", "main")
    message = git(origin, "log", "-1", "--format=%B", "main")
    assert message.startswith("gitops(staging): stable model version 2 at 100% (canary of")
    assert json.loads(message.split("\n\n")[1]) == read_state(work / "envs/staging").to_json()
    assert "Run: https://x/1" in message
    assert git(origin, "log", "-1", "--format=%an", "main") == BOT_NAME
    # Only the state file is in the commit; other changes in the tree stay out.
    assert (
        git(origin, "show", "--name-only", "--format=", "main")
        == "envs/staging/deploy.auto.tfvars.json"
    )


def test_unchanged_state_commits_nothing(origin: Path, tmp_path: Path) -> None:
    work = clone(origin, tmp_path / "work")
    before = git(origin, "rev-parse", "main")
    done = publish_state(work / "envs/production", "rolled back", push=True)
    assert done.commit is None and not done.pushed
    assert git(origin, "rev-parse", "main") == before


def test_a_push_that_lost_the_race_is_rebased(origin: Path, tmp_path: Path) -> None:
    staging = clone(origin, tmp_path / "staging")
    production = clone(origin, tmp_path / "production")
    write_state(staging / "envs/staging", TrafficSplit(NEW, "2"))
    publish_state(staging / "envs/staging", "canary of 2", push=True)
    write_state(production / "envs/production", TrafficSplit(NEW, "2"))
    done = publish_state(production / "envs/production", "canary of 2", push=True)
    assert done.pushed
    log = git(origin, "log", "--format=%s", "main").splitlines()
    assert log[:2] == [
        "gitops(production): stable model version 2 at 100% (canary of 2)",
        "gitops(staging): stable model version 2 at 100% (canary of 2)",
    ]


def test_a_conflicting_change_of_the_same_environment_is_refused(
    origin: Path, tmp_path: Path
) -> None:
    first = clone(origin, tmp_path / "first")
    second = clone(origin, tmp_path / "second")
    write_state(first / "envs/staging", TrafficSplit(NEW, "2"))
    publish_state(first / "envs/staging", "canary of 2", push=True)
    write_state(second / "envs/staging", TrafficSplit(NEW, "3"))
    with pytest.raises(PublishError, match="could not be rebased"):
        publish_state(second / "envs/staging", "canary of 3", push=True)
    assert git(second, "status", "--porcelain") == ""  # the rebase was aborted cleanly


def test_the_token_goes_to_github_remotes_only_and_never_to_disk() -> None:
    environ = {"GITHUB_TOKEN": "t0ken", "GITHUB_SERVER_URL": "https://github.com"}
    auth = _auth_env("https://github.com/acme/credit-scoring", environ)
    header = base64.b64encode(b"x-access-token:t0ken").decode()
    assert auth == {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.https://github.com/.extraheader",
        "GIT_CONFIG_VALUE_0": f"AUTHORIZATION: basic {header}",
    }
    assert _auth_env("https://evil.example/acme/x", environ) == {}
    assert _auth_env("/srv/git/origin.git", environ) == {}
    assert _auth_env("https://github.com/acme/x", {}) == {}


def test_the_commit_subject_says_when_a_shadow_phase_mirrors_traffic(tmp_path: Path) -> None:
    from modelops.deploy.publish import commit_message

    env_dir = tmp_path / "staging"
    env_dir.mkdir()
    write_state(env_dir, TrafficSplit(DIGEST, "1", NEW, "2", 0, 50))
    subject = commit_message(env_dir, "shadow of 2", None).splitlines()[0]
    assert subject == (
        "gitops(staging): stable model version 1 at 100%, 50% mirrored to 2 (shadow) (shadow of 2)"
    )
