"""The GitOps desired-state file: validation, exact format, atomic writes, clear errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from modelops.deploy import gitops
from modelops.deploy.gitops import KEYS, TrafficSplit, parse_state, read_state, write_state
from modelops.errors import ModelopsError, RouterError

DIGEST_A = "a" * 64
DIGEST_B = "0123456789abcdef" * 4
STABLE = f"ghcr.io/acme/credit-model@sha256:{DIGEST_A}"
CANARY = f"ghcr.io/acme/credit-model@sha256:{DIGEST_B}"


def canary_split(weight: int = 25) -> TrafficSplit:
    return TrafficSplit(STABLE, "3", CANARY, "4", weight)


def test_keys_are_the_six_desired_state_fields() -> None:
    assert KEYS == (
        "stable_image",
        "stable_model_version",
        "canary_image",
        "canary_model_version",
        "canary_weight",
        "canary_mirror_percent",
    )


def test_a_file_written_before_the_shadow_phase_reads_as_no_mirror() -> None:
    old = {k: v for k, v in canary_split(10).to_json().items() if k != "canary_mirror_percent"}
    assert parse_state(old, "old file").canary_mirror_percent == 0
    with pytest.raises(RouterError, match="canary_mirror_percent 5 needs a canary_image"):
        TrafficSplit(STABLE, "3", canary_mirror_percent=5)


@pytest.mark.parametrize(
    "image",
    [
        STABLE,
        f"ghcr.io/acme/credit-model:v1.2@sha256:{DIGEST_A}",
        f"registry.example.com:5000/team/sub/model@sha256:{DIGEST_A}",
        f"localhost:5000/model@sha256:{DIGEST_A}",
        f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/model__x@sha256:{DIGEST_A}",
    ],
)
def test_digest_pinned_images_are_accepted(image: str) -> None:
    assert TrafficSplit(image, "1").stable_image == image


@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/acme/credit-model:latest",  # a tag can move
        "ghcr.io/acme/credit-model",
        f"credit-model@sha256:{DIGEST_A}",  # no registry host
        f"ghcr.io/Acme/model@sha256:{DIGEST_A}",  # repository paths are lowercase
        f"ghcr.io/acme/model@sha256:{DIGEST_A[:-1]}",  # 63 hex digits
        f"ghcr.io/acme/model@sha256:{DIGEST_A.upper()}",
        f"ghcr.io/acme/model@sha512:{DIGEST_A}",
        f" ghcr.io/acme/model@sha256:{DIGEST_A}",
        f"ghcr.io/acme/model@sha256:{DIGEST_A}\n",
        "",
    ],
)
def test_images_not_pinned_by_digest_are_refused(image: str) -> None:
    with pytest.raises(RouterError, match=r"stable_image .* not pinned by digest"):
        TrafficSplit(image, "1")
    with pytest.raises(RouterError, match=r"canary_image .* not pinned by digest"):
        TrafficSplit(STABLE, "1", image, "2", 10)


@pytest.mark.parametrize("weight", [-1, 101, 10.0, 12.5, True, "10", None])
def test_weight_must_be_a_whole_number_from_0_to_100(weight: object) -> None:
    with pytest.raises(RouterError, match=r"canary_weight .* whole number from 0 to 100"):
        TrafficSplit(STABLE, "1", CANARY, "2", weight)  # type: ignore[arg-type]


@pytest.mark.parametrize("weight", [0, 1, 50, 100])
def test_weights_0_to_100_are_accepted(weight: int) -> None:
    split = TrafficSplit(STABLE, "1", CANARY, "2", weight)
    assert split.canary_weight + split.stable_weight == 100


def test_weight_above_zero_needs_a_canary_image() -> None:
    with pytest.raises(RouterError, match="canary_weight 10 needs a canary_image"):
        TrafficSplit(STABLE, "1", None, None, 10)
    assert TrafficSplit(STABLE, "1", None, None, 0).canary_image is None


def test_canary_image_and_model_version_go_together() -> None:
    with pytest.raises(RouterError, match="together"):
        TrafficSplit(STABLE, "1", CANARY, None, 0)
    with pytest.raises(RouterError, match="together"):
        TrafficSplit(STABLE, "1", None, "2", 0)


@pytest.mark.parametrize("version", ["", "-1", "1-", "a" * 64, "v 2", "2/3"])
def test_model_versions_must_be_label_safe(version: str) -> None:
    with pytest.raises(RouterError, match="stable_model_version"):
        TrafficSplit(STABLE, version)


def test_every_problem_is_reported_at_once_and_is_a_modelops_error() -> None:
    with pytest.raises(ModelopsError) as caught:
        TrafficSplit("img:latest", "", None, "2", 150)
    message = str(caught.value)
    for fragment in ("stable_image", "stable_model_version", "together", "canary_weight 150"):
        assert fragment in message


def test_write_then_read_round_trips_with_the_exact_format(tmp_path: Path) -> None:
    split = canary_split(25)
    path = write_state(tmp_path, split)
    assert path == tmp_path / "deploy.auto.tfvars.json"
    text = path.read_text()
    assert text.endswith("}\n") and text.count("\n") == 8  # 2-space JSON, one key a line
    assert list(json.loads(text)) == list(KEYS)
    assert read_state(tmp_path) == split
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in tmp_path.iterdir()] == ["deploy.auto.tfvars.json"]


def test_null_canary_is_written_as_json_null(tmp_path: Path) -> None:
    write_state(tmp_path, TrafficSplit(STABLE, "7"))
    data = json.loads((tmp_path / "deploy.auto.tfvars.json").read_text())
    assert data == {
        "stable_image": STABLE,
        "stable_model_version": "7",
        "canary_image": None,
        "canary_model_version": None,
        "canary_weight": 0,
        "canary_mirror_percent": 0,
    }


def test_a_failed_write_leaves_the_old_file_whole_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_state(tmp_path, canary_split(10))
    before = (tmp_path / "deploy.auto.tfvars.json").read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space left"):
        write_state(tmp_path, canary_split(50))
    assert (tmp_path / "deploy.auto.tfvars.json").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["deploy.auto.tfvars.json"]


def test_snapshot_and_restore_put_back_bytes_or_absence(tmp_path: Path) -> None:
    path = tmp_path / "deploy.auto.tfvars.json"
    assert gitops.snapshot(path) is None
    path.write_text('{"hand":   "formatted"}')
    saved = gitops.snapshot(path)
    write_state(tmp_path, canary_split())
    gitops.restore(path, saved)
    assert path.read_text() == '{"hand":   "formatted"}'
    gitops.restore(path, None)
    assert not path.exists()


def test_missing_file_says_where_and_what_to_create(tmp_path: Path) -> None:
    with pytest.raises(RouterError, match=r"no desired state at .*deploy\.auto\.tfvars\.json"):
        read_state(tmp_path)


def test_broken_json_names_the_file_and_the_position(tmp_path: Path) -> None:
    (tmp_path / "deploy.auto.tfvars.json").write_text('{\n  "stable_image": ,\n}')
    with pytest.raises(RouterError, match=r"not valid JSON \(line 2, column 19"):
        read_state(tmp_path)


def test_missing_and_unknown_keys_are_named(tmp_path: Path) -> None:
    data = canary_split().to_json()
    del data["canary_weight"]
    data["canary_weigth"] = 10
    (tmp_path / "deploy.auto.tfvars.json").write_text(json.dumps(data))
    with pytest.raises(RouterError) as caught:
        read_state(tmp_path)
    assert "missing ['canary_weight']" in str(caught.value)
    assert "unknown ['canary_weigth']" in str(caught.value)


def test_invalid_values_in_the_file_name_the_file(tmp_path: Path) -> None:
    data = canary_split().to_json() | {"canary_weight": 250}
    (tmp_path / "deploy.auto.tfvars.json").write_text(json.dumps(data))
    with pytest.raises(RouterError, match=r"deploy\.auto\.tfvars\.json: .*canary_weight 250"):
        read_state(tmp_path)


def test_a_whole_float_weight_in_the_file_reads_as_an_int(tmp_path: Path) -> None:
    """terraform reads 25.0 as 25, so the reader does too; 12.5 stays invalid."""
    data = canary_split().to_json() | {"canary_weight": 25.0}
    (tmp_path / "deploy.auto.tfvars.json").write_text(json.dumps(data))
    assert read_state(tmp_path).canary_weight == 25
    assert type(read_state(tmp_path).canary_weight) is int
    (tmp_path / "deploy.auto.tfvars.json").write_text(json.dumps(data | {"canary_weight": 12.5}))
    with pytest.raises(RouterError, match=r"canary_weight 12\.5"):
        read_state(tmp_path)


def test_a_json_array_is_refused(tmp_path: Path) -> None:
    (tmp_path / "deploy.auto.tfvars.json").write_text("[]")
    with pytest.raises(RouterError, match="expected a JSON object"):
        read_state(tmp_path)
