"""The real terraform binary, offline, on a provider-free harness built from the real files.

The environments need the kubernetes provider and a cluster, which this machine cannot
reach, so `terraform validate`/`apply` of envs/<env> run in GitHub Actions. What runs here
with the real binary and no provider: the environment's `variables.tf`, the module's
`variables.tf` (all the validation rules) and the committed `deploy.auto.tfvars.json`,
wired as in envs/<env>/main.tf. That proves, with terraform itself:

- `terraform fmt -check` passes on all of infra/terraform;
- Python (gitops.read_state) and terraform accept and refuse exactly the same files;
- TerraformRouter drives real `terraform init` / `apply` (flags, -chdir, auto-loading of
  the JSON file, null canary values), and a real failure (a concurrent run holding the state
  lock) leaves the previous desired state in place.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from modelops.deploy import gitops
from modelops.deploy.router import CommandResult, RouterError, TerraformRouter, run_command
from modelops.errors import ModelopsError

# Deselected from the default run (pyproject addopts): .ci/run cannot install terraform here
# (no package registry carries it), so `make tf-check` runs them where terraform is installed,
# as ci.yml's terraform job does with hashicorp/setup-terraform.
pytestmark = pytest.mark.terraform_binary

TERRAFORM_DIR = Path(__file__).resolve().parents[2] / "infra" / "terraform"
ENV = TERRAFORM_DIR / "envs" / "staging"
MODULE = TERRAFORM_DIR / "modules" / "model-service"

DIGEST_1 = "1" * 64
DIGEST_2 = "ab" * 32
IMAGE_1 = f"ghcr.io/acme/credit-model@sha256:{DIGEST_1}"
IMAGE_2 = f"ghcr.io/acme/credit-model@sha256:{DIGEST_2}"

HARNESS_MAIN = """\
terraform {
  required_version = ">= 1.10.0"
}

# As in envs/<env>/main.tf, minus the provider and the Kubernetes resources.
module "model_service" {
  source = "./model-service"

  stable_image         = var.stable_image
  stable_model_version = var.stable_model_version
  canary_image         = var.canary_image
  canary_model_version = var.canary_model_version
  canary_weight        = var.canary_weight

  name        = "credit-scoring"
  namespace   = "modelops-staging"
  environment = "staging"
  gateway     = var.gateway
  hostnames   = ["staging.models.example.com"]
}

output "applied" {
  value = module.model_service.desired_state
}
"""

MODULE_OUTPUT = """\
output "desired_state" {
  value = {
    stable_image         = var.stable_image
    stable_model_version = var.stable_model_version
    canary_image         = var.canary_image
    canary_model_version = var.canary_model_version
    canary_weight        = var.canary_weight
  }
}
"""


@pytest.fixture(scope="module")
def terraform() -> str:
    found = os.environ.get("TERRAFORM") or shutil.which("terraform")
    if not found:
        pytest.fail(
            "these tests run the real terraform (>= 1.10) offline: install it "
            "(GitHub Actions: hashicorp/setup-terraform) or set TERRAFORM=/path/to/terraform"
        )
    return found


@pytest.fixture(autouse=True)
def _quiet_terraform(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECKPOINT_DISABLE", "1")  # no version check over the network
    monkeypatch.setenv("TF_IN_AUTOMATION", "1")


@pytest.fixture
def harness(tmp_path: Path, terraform: str) -> Path:
    root = tmp_path / "staging"
    (root / "model-service").mkdir(parents=True)
    shutil.copy(ENV / "variables.tf", root)
    shutil.copy(ENV / gitops.STATE_FILE, root)
    shutil.copy(MODULE / "variables.tf", root / "model-service")
    (root / "model-service" / "outputs.tf").write_text(MODULE_OUTPUT)
    (root / "main.tf").write_text(HARNESS_MAIN)
    return root


def tf(terraform: str, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [terraform, f"-chdir={root}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def initialised(harness: Path, terraform: str) -> Path:
    done = tf(terraform, harness, "init", "-input=false", "-no-color")
    assert done.returncode == 0, done.stderr
    return harness


def test_terraform_fmt_is_clean(terraform: str) -> None:
    checked = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", "-no-color", str(TERRAFORM_DIR)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, f"run: terraform fmt -recursive\n{checked.stdout}"


def valid(**changes: Any) -> dict[str, Any]:
    base = {
        "stable_image": IMAGE_1,
        "stable_model_version": "3",
        "canary_image": IMAGE_2,
        "canary_model_version": "4",
        "canary_weight": 10,
        "canary_mirror_percent": 0,
    }
    return base | changes


CASES: dict[str, dict[str, Any]] = {
    "canary at 10": valid(),
    "canary at 100": valid(canary_weight=100),
    "shadow, 50 % mirrored": valid(canary_weight=0, canary_mirror_percent=50),
    "weight 25.0": valid(canary_weight=25.0),
    "no canary": valid(canary_image=None, canary_model_version=None, canary_weight=0),
    "canary waiting at 0": valid(canary_weight=0),
    "tag and digest": valid(stable_image=f"ghcr.io/acme/m:v1.2@sha256:{DIGEST_1}"),
    "registry with port": valid(canary_image=f"registry.example.com:5000/a/b@sha256:{DIGEST_2}"),
    "version 1.0-rc_1": valid(stable_model_version="1.0-rc_1"),
    "weight 101": valid(canary_weight=101),
    "weight -1": valid(canary_weight=-1),
    "weight 12.5": valid(canary_weight=12.5),
    "weight true": valid(canary_weight=True),
    "weight without canary": valid(canary_image=None, canary_model_version=None),
    "mirror 150": valid(canary_weight=0, canary_mirror_percent=150),
    "mirror without canary": valid(
        canary_image=None, canary_model_version=None, canary_weight=0, canary_mirror_percent=20
    ),
    "canary image without version": valid(canary_model_version=None, canary_weight=0),
    "canary version without image": valid(canary_image=None, canary_weight=0),
    "stable by tag": valid(stable_image="ghcr.io/acme/credit-model:latest"),
    "canary by tag": valid(canary_image="ghcr.io/acme/credit-model:v2"),
    "uppercase digest": valid(stable_image=f"ghcr.io/acme/m@sha256:{DIGEST_2.upper()}"),
    "no registry host": valid(stable_image=f"credit-model@sha256:{DIGEST_1}"),
    "short digest": valid(canary_image=f"ghcr.io/acme/m@sha256:{DIGEST_2[:-2]}"),
    "version with space": valid(stable_model_version="v 2"),
    "version of 64 chars": valid(canary_model_version="9" * 64),
}


def python_accepts(data: dict[str, Any]) -> bool:
    try:
        gitops.parse_state(data, "case")
    except ModelopsError:
        return False
    return True


def test_python_and_terraform_agree_on_every_desired_state(
    initialised: Path, terraform: str
) -> None:
    verdicts: dict[str, tuple[bool, bool]] = {}
    for name, data in CASES.items():
        (initialised / gitops.STATE_FILE).write_text(json.dumps(data))
        planned = tf(terraform, initialised, "plan", "-input=false", "-no-color", "-lock=false")
        if planned.returncode not in (0, 1):
            pytest.fail(f"{name}: terraform crashed\n{planned.stderr}")
        if planned.returncode == 1:
            assert "Invalid value for" in planned.stderr, f"{name}: {planned.stderr}"
        verdicts[name] = (python_accepts(data), planned.returncode == 0)
    disagree = {name: v for name, v in verdicts.items() if v[0] != v[1]}
    assert disagree == {}, "(python, terraform) verdicts differ"
    accepted = {name for name, v in verdicts.items() if v[1]}
    assert len(accepted) == 8  # the eight valid cases above, and only those


def test_the_committed_placeholders_pass_terraform_validation(
    initialised: Path, terraform: str
) -> None:
    for env in ("staging", "production"):
        shutil.copy(TERRAFORM_DIR / "envs" / env / gitops.STATE_FILE, initialised)
        planned = tf(terraform, initialised, "plan", "-input=false", "-no-color", "-lock=false")
        assert planned.returncode == 0, f"{env}: {planned.stderr}"


class RecordingRunner:
    """run_command, remembering each argv: counts the real terraform calls."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(
        self, argv: Sequence[str], *, env: Mapping[str, str], timeout_s: float
    ) -> CommandResult:
        self.calls.append(list(argv))
        return run_command(argv, env=env, timeout_s=timeout_s)


def applied_outputs(terraform: str, root: Path) -> dict[str, Any]:
    shown = tf(terraform, root, "output", "-json", "-no-color")
    assert shown.returncode == 0, shown.stderr
    value: dict[str, Any] = json.loads(shown.stdout)["applied"]["value"]
    return value


def test_the_router_drives_real_terraform(harness: Path, terraform: str) -> None:
    runner = RecordingRunner()
    router = TerraformRouter(harness, terraform=terraform, runner=runner, timeout_s=120)
    canary = gitops.TrafficSplit(IMAGE_1, "3", IMAGE_2, "4", 25)
    router.apply(canary)
    assert applied_outputs(terraform, harness) == canary.to_json()

    promoted = gitops.TrafficSplit(IMAGE_2, "4")
    router.apply(promoted)
    assert applied_outputs(terraform, harness) == promoted.to_json()
    assert router.current() == promoted
    assert [argv[2] for argv in runner.calls] == ["init", "apply", "apply"]


def test_a_real_terraform_failure_restores_the_previous_state(
    harness: Path, terraform: str
) -> None:
    router = TerraformRouter(harness, terraform=terraform, timeout_s=120, lock_timeout="0s")
    first = gitops.TrafficSplit(IMAGE_1, "3", IMAGE_2, "4", 10)
    router.apply(first)
    committed = (harness / gitops.STATE_FILE).read_bytes()

    # A concurrent run holds the state lock (the local backend locks the state file).
    with held_lock(harness / "terraform.tfstate"), pytest.raises(RouterError) as caught:
        router.apply(gitops.TrafficSplit(IMAGE_1, "3", IMAGE_2, "4", 50))
    assert "Error acquiring the state lock" in str(caught.value)
    assert "restored" in str(caught.value)
    assert (harness / gitops.STATE_FILE).read_bytes() == committed
    assert applied_outputs(terraform, harness)["canary_weight"] == 10


@contextmanager
def held_lock(path: Path) -> Iterator[None]:
    """An exclusive POSIX lock on the state file, as a running terraform holds it."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield
    finally:
        os.close(fd)


@pytest.fixture(autouse=True)
def _no_leftovers(tmp_path: Path) -> Iterator[None]:
    yield
    leftovers = list(tmp_path.rglob(".deploy.auto.tfvars.json.*.tmp"))
    assert leftovers == []
