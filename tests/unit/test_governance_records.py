"""The governance records' pure parts: the model card's facts and text, approval times, receipt
names. The registry side (logging, tags, history, retirement) is tested against a real
`mlflow server` in tests/integration/test_governance.py."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml

from modelops.config import Params
from modelops.errors import ParamsError, RegistryError
from modelops.registry.approvals import parse_time
from modelops.registry.card import CardInputs, collect_card, render_card
from modelops.registry.receipts import CanaryDecision, check_env, receipt_body, receipt_path
from modelops.registry.tracking import file_md5

RUN = SimpleNamespace(
    run_id="r" * 32, git_commit="c" * 40, data_md5="d" * 32, model_uri="models:/m-123"
)


def with_card(params: Params, data_path: str, date_column: str | None) -> Params:
    card = params.register_.card.model_copy(update={"date_column": date_column})
    register = params.register_.model_copy(update={"card": card})
    data = params.data.model_copy(update={"path": data_path})
    return params.model_copy(update={"register_": register, "data": data})


@pytest.fixture
def table(tmp_path: Path) -> Path:
    frame = pd.DataFrame(
        {"applied_on": ["2021-06-30", "2020-01-03", "not a date", "2020-11-11"], "x": [1, 2, 3, 4]}
    )
    frame.to_csv(tmp_path / "table.csv", index=False)
    return tmp_path / "table.csv"


def test_the_card_gives_the_period_of_the_date_column(
    params: Params, table: Path, tmp_path: Path
) -> None:
    p = with_card(params, "table.csv", "applied_on")
    card = collect_card(p, RUN, CardInputs(*(tmp_path / n for n in "abcd")), root=tmp_path)
    assert card.period == ("2020-01-03", "2021-06-30")
    text = render_card(card, "7", "2026-12-05T08:00:00Z")
    assert "| period | 2020-01-03 to 2021-06-30 (column `applied_on`) |" in text


@pytest.mark.parametrize("column", ["missing_column", "x"])
def test_a_wrong_date_column_is_refused_with_the_column_named(
    params: Params, table: Path, tmp_path: Path, column: str
) -> None:
    p = with_card(params, "table.csv", column)
    with pytest.raises(ParamsError, match=f"register.card.date_column '{column}'"):
        collect_card(p, RUN, CardInputs(*(tmp_path / n for n in "abcd")), root=tmp_path)


def test_missing_reports_are_named_in_the_card(params: Params, tmp_path: Path) -> None:
    inputs = CardInputs(
        tmp_path / "m.json", tmp_path / "g.json", tmp_path / "v.json", tmp_path / "l"
    )
    card = collect_card(params, RUN, inputs)
    text = render_card(card, "1", "2026-12-05T08:00:00Z")
    assert "Not recorded: the evaluate stage's report was not found." in text
    assert "Not recorded: the gate report was not found." in text
    assert f"**Missing inputs:** {tmp_path / 'm.json'} (run `dvc repro`)" in text
    assert f"{tmp_path / 'l'} (run `dvc repro`, then commit dvc.lock)" in text


def test_a_stale_dvc_lock_is_called_out(params: Params, repo_root: Path, tmp_path: Path) -> None:
    lock = {"stages": {"split": {"deps": [{"path": params.data.path, "md5": "e" * 32}]}}}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))
    gate = {"passed": True, "reasons": ["all gate checks passed"], "thresholds": {}}
    gate["champion"] = {
        "champion_version": "3",
        "champion_auc": 0.8,
        "difference": 0.012,
        "ci_low": -0.004,
        "ci_high": 0.028,
        "p_value": 0.14,
    }
    (tmp_path / "gate.json").write_text(json.dumps(gate))
    inputs = CardInputs(
        repo_root / "reports" / "metrics.json",
        tmp_path / "gate.json",
        repo_root / "reports" / "data_validation.json",
        tmp_path / "dvc.lock",
    )
    text = render_card(collect_card(params, RUN, inputs), "4", "2026-12-05T08:00:00Z")
    assert f"`{'e' * 32}` in dvc.lock, but the training run read `{'d' * 32}`" in text
    assert "Champion version 3: ROC AUC 0.800, difference +0.0120" in text
    assert f"| dvc.lock MD5 | `{file_md5(tmp_path / 'dvc.lock')}` |" in text
    assert "| `__missing__` | 1 | 1 | n/a (one class only) |" in text


@pytest.mark.parametrize(
    ("given", "utc"),
    [
        ("2026-12-05T08:30:00Z", "2026-12-05T08:30:00Z"),
        ("2026-12-05T09:30:00+01:00", "2026-12-05T08:30:00Z"),
        ("2026-12-05T08:30:00.123456+00:00", "2026-12-05T08:30:00Z"),
    ],
)
def test_approval_times_are_kept_in_utc(given: str, utc: str) -> None:
    assert parse_time(given) == utc


@pytest.mark.parametrize("given", ["2026-12-05T08:30:00", "yesterday", ""])
def test_approval_times_without_an_offset_are_refused(given: str) -> None:
    with pytest.raises(RegistryError, match="ISO 8601 time with its offset"):
        parse_time(given)


@pytest.mark.parametrize("env", ["", "prod/eu", "a b", "-x"])
def test_environment_names_must_fit_tags_and_file_names(env: str) -> None:
    with pytest.raises(RegistryError, match="letters, digits"):
        check_env(env)


def test_a_receipt_is_named_by_its_decision_time_and_environment() -> None:
    decision = CanaryDecision(
        "m", "2", "production", "promoted", "all steps passed", "img", None, None,
        started_at=1_800_000_000.0, decided_at=1_800_000_125.4,
    )  # fmt: skip
    assert receipt_path(decision) == "receipts/20270115T080205Z-production.json"
    body = receipt_body(decision)
    assert body["decided_at"] == "2027-01-15T08:02:05Z" and body["duration_s"] == 125.4
    assert body["stable"] is None and body["gitops"] == {"file": None, "blob": None, "commit": None}
