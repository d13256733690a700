"""Every .tf file in infra/terraform parses, and the code keeps its conventions.

Parsed with hcl2 (bc-python-hcl2, the parser checkov uses). `terraform validate` needs the
kubernetes provider, which cannot be downloaded here, so it runs in GitHub Actions; these
tests catch what needs no provider schema: syntax, missing descriptions, unpinned providers,
and the module drifting from the service contract (port 8000, /ready, /health, /tmp).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import hcl2
import pytest

TERRAFORM = Path(__file__).resolve().parents[2] / "infra" / "terraform"
MODULE = TERRAFORM / "modules" / "model-service"
LOG_BUCKET = TERRAFORM / "modules" / "prediction-logs"
ENVS = ("staging", "production")
TF_FILES = sorted(p for p in TERRAFORM.rglob("*.tf") if ".terraform" not in p.parts)


def load(path: Path) -> dict[str, Any]:
    return hcl2.loads(path.read_text(encoding="utf-8"))


def blocks(folder: Path, kind: str) -> dict[str, dict[str, Any]]:
    """Named blocks of one kind (variable, output, module) across a folder's .tf files."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.tf")):
        for entry in load(path).get(kind, []):
            found.update(entry)
    return found


def first(block: dict[str, Any], key: str) -> Any:
    """bc-python-hcl2 wraps every attribute and nested block in a list."""
    return block[key][0]


def test_the_expected_files_exist() -> None:
    names = {p.relative_to(TERRAFORM).as_posix() for p in TF_FILES}
    parts = ("main", "variables", "outputs", "versions")
    expected = {f"modules/{m}/{n}.tf" for m in ("model-service", "prediction-logs") for n in parts}
    for env in ENVS:
        expected |= {f"envs/{env}/{n}.tf" for n in parts}
        expected.add(f"envs/{env}/backend.tf")
    assert expected <= names
    readmes = ("model-service", "prediction-logs")
    for readme in ("README.md", *(f"modules/{m}/README.md" for m in readmes), "envs/README.md"):
        assert (TERRAFORM / readme).is_file(), readme


@pytest.mark.parametrize("path", TF_FILES, ids=lambda p: p.relative_to(TERRAFORM).as_posix())
def test_every_tf_file_parses(path: Path) -> None:
    parsed = load(path)
    assert parsed, f"{path} holds no blocks"


@pytest.mark.parametrize(
    "folder", [MODULE, LOG_BUCKET] + [TERRAFORM / "envs" / e for e in ENVS], ids=str
)
def test_variables_and_outputs_are_typed_and_described(folder: Path) -> None:
    variables = blocks(folder, "variable")
    assert variables
    for name, var in variables.items():
        assert "type" in var, f"variable {name} in {folder} has no type"
        description = first(var, "description")
        assert len(description) >= 15, f"variable {name} in {folder}: describe it"
        for rule in var.get("validation", []):
            message = first(rule, "error_message")
            # What terraform validate requires: a full sentence.
            assert re.match(r"^[A-Z].*[.?]$", message, re.S), f"{name}: {message!r}"
    for name, out in blocks(folder, "output").items():
        assert len(first(out, "description")) >= 10, f"output {name} in {folder}: describe it"


@pytest.mark.parametrize("folder", [MODULE] + [TERRAFORM / "envs" / e for e in ENVS], ids=str)
def test_terraform_and_providers_are_pinned(folder: Path) -> None:
    settings = load(folder / "versions.tf")["terraform"][0]
    assert first(settings, "required_version").startswith(">= 1.")
    providers = first(settings, "required_providers")
    assert set(providers) == {"kubernetes"}
    kubernetes = first(providers, "kubernetes")
    assert kubernetes["source"] == "hashicorp/kubernetes"
    # An upper bound keeps a major release with breaking changes out until tested.
    assert kubernetes["version"].startswith("~> 2.") or "< 3.0.0" in kubernetes["version"]


@pytest.mark.parametrize("env", ENVS)
def test_envs_use_a_partial_s3_backend_with_an_example_that_locks(env: str) -> None:
    folder = TERRAFORM / "envs" / env
    backend = first(load(folder / "backend.tf")["terraform"][0], "backend")
    assert backend == {"s3": {}}
    example = (folder / "backend.hcl.example").read_text()
    settings = hcl2.loads(example)
    assert first(settings, "use_lockfile") is True
    assert first(settings, "encrypt") is True
    assert first(settings, "key") == f"modelops/{env}/terraform.tfstate"


def test_both_envs_declare_the_same_variables_and_outputs() -> None:
    staging, production = (TERRAFORM / "envs" / e for e in ENVS)
    assert blocks(staging, "variable") == blocks(production, "variable")
    assert blocks(staging, "output") == blocks(production, "output")


def _deployment() -> dict[str, Any]:
    resources = load(MODULE / "main.tf")["resource"]
    kind = "kubernetes_deployment_v1"
    found = [r[kind]["model"] for r in resources if kind in r]
    assert len(found) == 1
    return found[0]


def test_pods_follow_the_service_contract() -> None:
    deployment = _deployment()
    pod = first(first(first(deployment, "spec"), "template"), "spec")
    container = first(pod, "container")
    port = first(container, "port")
    assert port["container_port"] == ["${local.container_port}"]
    assert "container_port = 8000" in (MODULE / "main.tf").read_text()
    probes = {
        kind: first(first(container, kind), "http_get")
        for kind in ("readiness_probe", "liveness_probe", "startup_probe")
    }
    assert first(probes["readiness_probe"], "path") == "/ready"
    assert first(probes["liveness_probe"], "path") == "/health"
    assert {first(p, "port") for p in probes.values()} == {"http"} == {first(port, "name")}

    env = {first(e, "name"): first(e, "value") for e in container["env"]}
    assert {"MODELOPS_ENVIRONMENT", "MODELOPS_TRACK", "MODELOPS_IMAGE_TAG"} <= set(env)
    # The service defaults to 127.0.0.1: probes and the Service need every interface.
    assert env["MODELOPS_HOST"] == "0.0.0.0"
    assert env["MODELOPS_PORT"] == "${tostring(local.container_port)}"
    assert env["MODELOPS_PREDICTION_LOG"] == "${var.prediction_log}"
    pre_stop = first(first(first(container, "lifecycle"), "pre_stop"), "exec")
    assert first(pre_stop, "command")[0] == "sleep"
    assert first(first(container, "volume_mount"), "mount_path") == "/tmp"
    volume = first(pod, "volume")
    assert first(volume, "name") == first(first(container, "volume_mount"), "name")
    assert "empty_dir" in volume

    hardening = first(container, "security_context")
    assert first(hardening, "read_only_root_filesystem") is True
    assert first(hardening, "run_as_non_root") is True
    assert first(hardening, "allow_privilege_escalation") is False
    assert first(first(hardening, "capabilities"), "drop") == ["ALL"]
    assert first(first(pod, "security_context"), "run_as_non_root") is True
    assert first(pod, "automount_service_account_token") is False
    resources = first(container, "resources")
    assert set(resources) == {"requests", "limits"}


def test_pods_carry_the_scrape_annotations_and_track_labels() -> None:
    text = (MODULE / "main.tf").read_text()
    for annotation in ('"prometheus.io/scrape" = "true"', '"prometheus.io/path"   = "/metrics"'):
        assert annotation in text
    template_meta = first(first(first(_deployment(), "spec"), "template"), "metadata")
    assert first(template_meta, "annotations") == "${local.scrape_annotations}"
    selectors = first(load(MODULE / "main.tf")["locals"][0], "selectors")
    assert "'modelops.io/track': '${track}'" in selectors


def test_replicas_are_left_to_the_autoscaler_after_creation() -> None:
    lifecycle = first(_deployment(), "lifecycle")
    assert first(lifecycle, "ignore_changes") == ["${spec[0].replicas}"]


def test_the_log_bucket_expires_logs_after_monitor_retention_days() -> None:
    """One window: the bucket's expiration rule defaults to params.yaml's
    monitor.retention_days, which `modelops logs prune` keeps in file stores."""
    from modelops.config import load_params

    retention = first(blocks(LOG_BUCKET, "variable")["retention_days"], "default")
    assert retention == load_params(TERRAFORM.parents[1] / "params.yaml").monitor.retention_days
    resources = load(LOG_BUCKET / "main.tf")["resource"]
    (lifecycle,) = [
        r["aws_s3_bucket_lifecycle_configuration"]["logs"]
        for r in resources
        if "aws_s3_bucket_lifecycle_configuration" in r
    ]
    rule = first(lifecycle, "rule")
    assert first(rule, "status") == "Enabled" and first(rule, "filter") == {}
    assert first(first(rule, "expiration"), "days") == "${var.retention_days}"
    settings = load(LOG_BUCKET / "versions.tf")["terraform"][0]
    assert first(first(settings, "required_providers"), "aws")["source"] == "hashicorp/aws"
