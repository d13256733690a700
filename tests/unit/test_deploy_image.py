"""`modelops deploy image-plan`: the image name, tags and build arguments of an exported model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from modelops.deploy.image import plan_image
from modelops.errors import Refused
from tests.conftest import REPO_ROOT

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def exported(tmp_path: Path) -> Path:
    folder = tmp_path / "build/model"
    folder.mkdir(parents=True)
    info = {"model_name": "credit-scoring", "model_version": "7", "run_id": "r1"}
    (folder / "export.json").write_text(json.dumps(info))
    return folder


def test_tags_carry_the_model_version_and_the_commit(exported: Path) -> None:
    plan = plan_image(exported, "ghcr.io", "Acme/Credit-Scoring", COMMIT)
    assert plan.image == "ghcr.io/acme/credit-scoring"  # registries want lower case
    assert plan.tags == [
        "ghcr.io/acme/credit-scoring:credit-scoring-v7",
        "ghcr.io/acme/credit-scoring:sha-0123456789ab",
    ]
    assert plan.build_args["MODEL_VERSION"] == "7" and plan.build_args["GIT_COMMIT"] == COMMIT
    # Every build argument is an ARG of the Dockerfile.
    declared = set(re.findall(r"(?m)^ARG (\w+)", (REPO_ROOT / "Dockerfile").read_text()))
    assert set(plan.build_args) <= declared


def test_outputs_use_the_multiline_form(exported: Path) -> None:
    text = plan_image(exported, "ghcr.io", "acme/x", COMMIT).to_outputs()
    lines = text.splitlines()
    assert lines[:3] == ["registry=ghcr.io", "image=ghcr.io/acme/x", "model_version=7"]
    start = lines.index(next(line for line in lines if line.startswith("tags<<")))
    delimiter = lines[start].split("<<")[1]
    assert lines[start + 1 : start + 3] == [
        "ghcr.io/acme/x:credit-scoring-v7",
        "ghcr.io/acme/x:sha-0123456789ab",
    ]
    assert lines[start + 3] == delimiter
    assert f"build-args<<{delimiter}" in lines


@pytest.mark.parametrize(
    ("repository", "commit", "message"),
    [
        ("acme", COMMIT, "not owner/name"),
        ("acme/x;rm", COMMIT, "not owner/name"),
        ("acme/x", "main", "not a git commit"),
    ],
)
def test_bad_input_is_refused(exported: Path, repository: str, commit: str, message: str) -> None:
    with pytest.raises(Refused, match=message):
        plan_image(exported, "ghcr.io", repository, commit)


def test_a_folder_without_export_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(Refused, match="run `modelops export-model"):
        plan_image(tmp_path, "ghcr.io", "acme/x", COMMIT)


def test_another_registry_or_name(exported: Path) -> None:
    plan = plan_image(exported, "ghcr.io", "acme/x", COMMIT, "registry.example.com:5000/ml/scoring")
    assert plan.registry == "registry.example.com:5000"
    assert plan.tags[0] == "registry.example.com:5000/ml/scoring:credit-scoring-v7"
    assert plan_image(exported, "ghcr.io", "", COMMIT, "localhost/credit-scoring").image == (
        "localhost/credit-scoring"
    )
    for bad in ("Registry.example.com/x", "ghcr.io/acme/x:latest", "scoring"):
        with pytest.raises(Refused, match="not host/path in lower case"):
            plan_image(exported, "ghcr.io", "acme/x", COMMIT, bad)
