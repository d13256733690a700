"""The contract between the canary controller and the Terraform code.

The controller writes gitops.KEYS to envs/<env>/deploy.auto.tfvars.json; terraform only
uses a value if the env declares a variable of that name and passes it on to the module,
which must declare it too. A key missing anywhere on that path would be silently ignored
(or, for a required variable, fail the apply), so this test ties all four together, and
checks that Python and Terraform validate the values with the same patterns.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import hcl2
import pytest

from modelops.deploy import gitops
from modelops.deploy.gitops import KEYS, TrafficSplit

TERRAFORM = Path(__file__).resolve().parents[2] / "infra" / "terraform"
MODULE = TERRAFORM / "modules" / "model-service"
ENVS = ("staging", "production")


def blocks(folder: Path, kind: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.tf")):
        for entry in hcl2.loads(path.read_text(encoding="utf-8")).get(kind, []):
            found.update(entry)
    return found


def module_call(env: str) -> dict[str, Any]:
    calls = blocks(TERRAFORM / "envs" / env, "module")
    assert set(calls) == {"model_service"}
    call = calls["model_service"]
    assert call["source"] == ["../../modules/model-service"]
    return {k: v[0] for k, v in call.items() if not k.startswith("__") and k != "source"}


def conditions(variable: dict[str, Any]) -> list[str]:
    """Validation conditions as text (hcl2 escapes inner quotes in some expressions)."""
    return [rule["condition"][0].replace('\\"', '"') for rule in variable.get("validation", [])]


def test_the_module_declares_every_desired_state_key() -> None:
    assert set(KEYS) <= set(blocks(MODULE, "variable"))


@pytest.mark.parametrize("env", ENVS)
def test_each_env_declares_the_keys_and_passes_them_to_the_module(env: str) -> None:
    declared = blocks(TERRAFORM / "envs" / env, "variable")
    assert set(KEYS) <= set(declared)
    call = module_call(env)
    for key in KEYS:
        assert call.get(key) == f"${{var.{key}}}", f"envs/{env}: pass {key} = var.{key}"


@pytest.mark.parametrize("env", ENVS)
def test_each_env_passes_only_known_inputs_and_every_required_one(env: str) -> None:
    module_vars = blocks(MODULE, "variable")
    call = module_call(env)
    unknown = set(call) - set(module_vars)
    assert not unknown, f"envs/{env} passes inputs the module does not declare: {unknown}"
    required = {name for name, var in module_vars.items() if "default" not in var}
    assert required <= set(call), f"envs/{env} misses {required - set(call)}"


@pytest.mark.parametrize("env", ENVS)
def test_env_desired_state_variables_have_no_default_except_the_optional_canary(
    env: str,
) -> None:
    declared = blocks(TERRAFORM / "envs" / env, "variable")
    with_default = {key for key in KEYS if "default" in declared[key]}
    # A missing stable_* or canary_weight in the file must fail the plan, not fall back.
    assert with_default == {"canary_image", "canary_model_version"}
    assert {declared[key]["default"][0] for key in with_default} == {None}


@pytest.mark.parametrize("env", ENVS)
def test_the_committed_desired_state_is_valid_and_canonical(env: str) -> None:
    env_dir = TERRAFORM / "envs" / env
    path = env_dir / gitops.STATE_FILE
    assert list(json.loads(path.read_text())) == list(KEYS)
    split = gitops.read_state(env_dir)
    # Exactly what the router would write, so the first deploy's diff shows only values.
    assert path.read_bytes() == gitops.render_state(split)
    assert split.canary_weight == 0 and split.canary_image is None


@pytest.mark.parametrize(
    ("variables", "pattern"),
    [
        (("stable_image", "canary_image"), gitops.IMAGE_PATTERN.pattern),
        (("stable_model_version", "canary_model_version"), gitops.MODEL_VERSION_PATTERN.pattern),
    ],
)
def test_python_and_terraform_validate_with_the_same_pattern(
    variables: tuple[str, ...], pattern: str
) -> None:
    # Terraform's regex() is RE2; keep to the syntax both engines read the same way.
    assert not re.search(r"\(\?[=!<]|\\[1-9]", pattern), "no lookaround or backreference"
    assert "\\" not in pattern and '"' not in pattern, "no escapes to translate for HCL"
    module_vars = blocks(MODULE, "variable")
    for name in variables:
        assert any(f'regex("{pattern}",' in c for c in conditions(module_vars[name])), name


def test_terraform_weight_rules_match_python() -> None:
    weight = conditions(blocks(MODULE, "variable")["canary_weight"])
    assert any(
        "var.canary_weight >= 0 && var.canary_weight <= 100" in c
        and "floor(var.canary_weight) == var.canary_weight" in c
        for c in weight
    )
    assert any("var.canary_weight == 0 || var.canary_image != None" in c for c in weight)
    versions = conditions(blocks(MODULE, "variable")["canary_model_version"])
    assert any(
        "var.canary_image == None ? var.canary_model_version == None : "
        "var.canary_model_version != None" in c
        for c in versions
    )
    # The same three rules in Python:
    image = "ghcr.io/a/b@sha256:" + "c" * 64
    for bad in (
        dict(canary_weight=101),
        dict(canary_weight=5, canary_image=None, canary_model_version=None),
        dict(canary_model_version=None),
    ):
        fields = dict(
            stable_image=image,
            stable_model_version="1",
            canary_image=image,
            canary_model_version="2",
            canary_weight=5,
        )
        with pytest.raises(gitops.RouterError):
            TrafficSplit(**(fields | bad))  # type: ignore[arg-type]
