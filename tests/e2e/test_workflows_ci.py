"""ci.yml's pull-request jobs run for real with act: pipeline + AUC gate, then the PR comment.

Two pushes to the same pull request of a throwaway copy of the project: the first tunes a
parameter (the gate passes, one comment is created), the second scrambles part of the labels
(the gate fails the required job, and the same comment is updated in place). The comment is
posted by the workflow's own github-script code, run by the stand-in against a fake GitHub
API (tests/fixtures/actions/README.md).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelops.ci.pr_comment import MARKER
from tests.conftest import REPO_ROOT
from tests.fixtures.actions.harness import Act, ActRun, act_project, event_payload, git

pytestmark = pytest.mark.e2e
PR = 7


@pytest.fixture(scope="module")
def act(tmp_path_factory: pytest.TempPathFactory) -> Act:
    root = tmp_path_factory.mktemp("ci")
    repo = act_project(root / "repo", root / "team/dvc-remote")
    git(repo, "checkout", "-qb", "feature/tune")
    return Act(repo, root)


def push(act: Act, message: str, label: str) -> ActRun:
    """Commit the working tree to the PR branch and run the PR workflow for that push.

    The title and branch name try a shell injection; the workflow must never run them.
    """
    git(act.repo, "commit", "-qam", message)
    canary = act.work / f"injected-{label}"
    payload = event_payload(
        "pull_request",
        **{
            "number": PR,
            "pull_request.number": PR,
            "pull_request.title": f'Tune "$(touch {canary})" `touch {canary}`',
            "pull_request.head.ref": f"feature/$(touch${{IFS}}{canary})",
            "pull_request.head.sha": git(act.repo, "rev-parse", "HEAD"),
            "pull_request.base.sha": git(act.repo, "rev-parse", "main"),
        },
    )
    run = act.run("pull_request", payload, "ci.yml", "comment", label=label)
    assert not canary.exists(), "a PR title or branch name was executed by the workflow"
    return run


def comments(act: Act) -> list[dict[str, Any]]:
    return [c for c in act.github_state()["comments"] if c["issue_number"] == PR]


@pytest.fixture(scope="module")
def tuned(act: Act) -> tuple[ActRun, list[dict[str, Any]]]:
    """First push: fewer boosting iterations."""
    params = act.repo / "params.yaml"
    text = params.read_text()
    assert "    max_iter: 250\n" in text
    params.write_text(text.replace("    max_iter: 250\n", "    max_iter: 150\n"))
    # The PR also edits the script the write-token job runs: the job must take main's.
    script = act.repo / ".github/scripts/github-api.js"
    hijacked = act.work / "hijacked"
    script.write_text(
        f"require('fs').writeFileSync({str(hijacked)!r}, 'x');\n" + script.read_text()
    )
    run = push(act, "Fewer boosting iterations", "pr-push-1")
    assert not hijacked.exists(), "the comment job ran the pull request's version of its script"
    return run, comments(act)


@pytest.fixture(scope="module")
def degraded(
    tuned: tuple[ActRun, list[dict[str, Any]]], act: Act
) -> tuple[ActRun, list[dict[str, Any]]]:
    """Second push to the same PR: 60% of the labels shuffled (a broken labelling job)."""
    path = act.repo / "data/raw/credit_data.csv"
    frame = pd.read_csv(path)
    rng = np.random.default_rng(3)
    rows = rng.choice(len(frame), size=int(0.6 * len(frame)), replace=False)
    frame.loc[rows, "Status"] = rng.permutation(frame.loc[rows, "Status"].to_numpy())
    frame.to_csv(path, index=False)
    run = push(act, "Refresh the data", "pr-push-2")
    return run, comments(act)


def hash_files(*paths: Path) -> str:
    """GitHub's hashFiles(): SHA-256 over the SHA-256 digests of the files, in order."""
    outer = hashlib.sha256()
    for path in paths:
        outer.update(hashlib.sha256(path.read_bytes()).digest())
    return outer.hexdigest()


def test_pr_posts_one_report_with_metrics_and_params_diff(
    tuned: tuple[ActRun, list[dict[str, Any]]], act: Act
) -> None:
    run, posted = tuned
    assert run.jobs() == {"pipeline": "succeeded", "comment": "succeeded"}, run.log[-4000:]
    assert len(posted) == 1
    body = posted[0]["body"]
    assert body.startswith(MARKER + "\n")
    assert "Model report: gate PASSED" in body
    main = json.loads(git(act.repo, "show", "main:reports/metrics.json"))
    report = act.artifact("model-report")
    new = json.loads((report / "reports/metrics.json").read_text())
    assert new["roc_auc"] != main["roc_auc"]  # the PR's own pipeline ran
    assert f"| roc_auc | {main['roc_auc']:.4f} | {new['roc_auc']:.4f} |" in body
    assert f"| pr_auc | {main['pr_auc']:.4f} | {new['pr_auc']:.4f} |" in body
    assert "| `train.hist_gradient_boosting.max_iter` | 250 | 150 |" in body
    assert "all gate checks passed" in body
    assert body.count("```mermaid") == 3  # ROC and PR curves (main vs PR), calibration
    assert (report / "build/pr-comment.md").read_text() == body
    assert (report / "reports/plots/roc.png").read_bytes()[:4] == b"\x89PNG"


def test_setup_action_keys_the_venv_cache_on_the_lock_file(
    tuned: tuple[ActRun, list[dict[str, Any]]], act: Act
) -> None:
    keys = (act.fakes / "cache/keys.log").read_text().split()
    expected = hash_files(REPO_ROOT / "requirements.lock", REPO_ROOT / "pyproject.toml")
    assert keys and all(k.startswith("venv-Linux-py3.11.") for k in keys), keys
    assert all(k.endswith(f"-{expected}") for k in keys), (keys, expected)


def test_second_push_updates_the_comment_and_a_worse_model_fails_the_gate(
    degraded: tuple[ActRun, list[dict[str, Any]]],
    tuned: tuple[ActRun, list[dict[str, Any]]],
    act: Act,
) -> None:
    run, posted = degraded
    # The gate is the required check: its job fails; the report is still posted.
    assert run.jobs() == {"pipeline": "failed", "comment": "succeeded"}, run.log[-4000:]
    assert "gate failed:" in run.log
    assert len(posted) == 1, "a second comment was posted instead of updating the first"
    assert posted[0]["id"] == tuned[1][0]["id"]
    body = posted[0]["body"]
    assert body != tuned[1][0]["body"]
    assert "Model report: gate FAILED" in body
    gate = json.loads((act.artifact("model-report") / "reports/gate.json").read_text())
    assert not gate["passed"] and gate["challenger_auc"] < gate["thresholds"]["min_auc"]
    assert f"{gate['challenger_auc']:.4f} is below gate.min_auc" in body
    calls = [c["method"] for c in act.github_state()["calls"]]
    assert calls == ["listComments", "createComment", "listComments", "updateComment"]
