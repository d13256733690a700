"""The model card of a registered version: markdown generated from what the pipeline wrote.

`collect_card` gathers the facts before anything is registered (so bad inputs refuse early):
intended use from params.yaml (`register.card`), the data's hash from dvc.lock, its rows
(the validate_data report) and period (`register.card.date_column`), the features, the
evaluate stage's metrics (ROC AUC with its bootstrap interval, AUC per segment), the gate's
verdict and the lineage. `render_card` turns them into `model-card.md`, which `modelops
register` logs on the version's run (tag `model_card` on the version points at it).
A report that is missing is said so in the card, never silently left out.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from modelops.config import Params
from modelops.errors import ParamsError
from modelops.registry.tracking import file_md5

if TYPE_CHECKING:
    from modelops.registry.client import RegistryClient, VersionRef

CARD_FILE = "model-card.md"
CARD_TAG = "model_card"  # on the version: runs:/<run id>/model-card.md


@dataclass(frozen=True)
class CardInputs:
    """Where the pipeline left what the card reports (the paths dvc.yaml gives)."""

    metrics: Path = Path("reports/metrics.json")
    gate: Path = Path("reports/gate.json")
    data_validation: Path = Path("reports/data_validation.json")
    lock: Path = Path("dvc.lock")


@dataclass(frozen=True)
class ModelCard:
    """Every fact of the card; `missing` names the inputs that were not found."""

    model_name: str
    params: Params
    run_id: str
    git_commit: str
    run_data_md5: str
    model_uri: str
    metrics: dict[str, Any]
    gate: dict[str, Any]
    rows: int | None
    lock_data_md5: str | None
    lock_md5: str | None
    period: tuple[str, str] | None
    missing: list[str] = field(default_factory=list)


def _json(path: Path, missing: list[str]) -> dict[str, Any]:
    if not path.is_file():
        missing.append(f"{path} (run `dvc repro`)")
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def lock_data_md5(lock: Path, data_path: str) -> str | None:
    """The MD5 dvc.lock records for `data_path` (as a dependency or output of any stage)."""
    stages = (yaml.safe_load(lock.read_text(encoding="utf-8")) or {}).get("stages", {})
    for stage in stages.values():
        for entry in [*stage.get("deps", []), *stage.get("outs", [])]:
            if entry.get("path") == data_path and entry.get("md5"):
                return str(entry["md5"])
    return None


def data_period(data_path: Path, column: str) -> tuple[str, str]:
    """First and last date in `column` of the table (CSV or parquet)."""
    import pandas as pd

    try:
        if data_path.suffix == ".parquet":
            frame = pd.read_parquet(data_path, columns=[column])
        else:
            frame = pd.read_csv(data_path, usecols=[column])
    except (ValueError, KeyError):
        raise ParamsError(
            f"register.card.date_column {column!r} is not a column of {data_path}: name a date "
            "column of the table, or set it to null (the card then gives no period)"
        ) from None
    values = frame[column]
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    dates = values.iloc[:0] if numeric else pd.to_datetime(values, errors="coerce").dropna()
    if dates.empty:
        raise ParamsError(
            f"register.card.date_column {column!r} in {data_path} holds no readable dates: "
            "name a date column, or set it to null"
        )
    return dates.min().date().isoformat(), dates.max().date().isoformat()


def collect_card(
    params: Params,
    run: Any,
    inputs: CardInputs,
    root: Path = Path("."),
) -> ModelCard:
    """The card's facts for the training run `run` (models/run.json's fields)."""
    missing: list[str] = []
    metrics = _json(inputs.metrics, missing)
    gate = _json(inputs.gate, missing)
    rows = _json(inputs.data_validation, missing).get("rows")
    lock_md5 = file_md5(inputs.lock) if inputs.lock.is_file() else None
    if lock_md5 is None:
        missing.append(f"{inputs.lock} (run `dvc repro`, then commit dvc.lock)")
    date_column = params.register_.card.date_column
    return ModelCard(
        model_name=params.register_.model_name,
        params=params,
        run_id=run.run_id,
        git_commit=run.git_commit,
        run_data_md5=run.data_md5,
        model_uri=run.model_uri,
        metrics=metrics,
        gate=gate,
        rows=int(rows) if rows is not None else None,
        lock_data_md5=lock_data_md5(inputs.lock, params.data.path) if lock_md5 else None,
        lock_md5=lock_md5,
        period=data_period(root / params.data.path, date_column) if date_column else None,
        missing=missing,
    )


def _num(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{float(value):.{digits}f}"


def _data_section(card: ModelCard) -> list[str]:
    d = card.params.data
    test_rows, positive_rate = card.metrics.get("test_rows"), card.metrics.get("positive_rate")
    if card.lock_data_md5 is None:
        hashed = f"not in dvc.lock (the training run read `{card.run_data_md5}`)"
    elif card.lock_data_md5 == card.run_data_md5:
        hashed = f"`{card.lock_data_md5}` (dvc.lock; the training run read the same)"
    else:
        hashed = (
            f"`{card.lock_data_md5}` in dvc.lock, but the training run read "
            f"`{card.run_data_md5}`: dvc.lock is stale, commit the one `dvc repro` wrote"
        )
    rows = "n/a" if card.rows is None else f"{card.rows}"
    if test_rows is not None:
        rows += f" ({int(test_rows)} held out for the test set)"
    column = card.params.register_.card.date_column
    period = (
        f"{card.period[0]} to {card.period[1]} (column `{column}`)"
        if card.period
        else "not recorded (no date column: set `register.card.date_column`)"
    )
    label = f"`{d.target}`, positive class `{d.positive_class}`"
    if positive_rate is not None:
        label += f" ({float(positive_rate):.1%} of test rows)"
    return [
        "## Data",
        "",
        "| | |",
        "|---|---|",
        f"| table | `{d.path}` |",
        f"| hash (MD5) | {hashed} |",
        f"| rows | {rows} |",
        f"| period | {period} |",
        f"| label | {label} |",
    ]


def _metrics_section(card: ModelCard) -> list[str]:
    m = card.metrics
    if not m:
        return ["## Metrics", "", "Not recorded: the evaluate stage's report was not found."]
    level = card.params.evaluate.confidence_level
    auc = (
        f"{_num(m.get('roc_auc'))} ({level:.0%} CI {_num(m.get('roc_auc_ci_low'))} to "
        f"{_num(m.get('roc_auc_ci_high'))}, bootstrap of "
        f"{card.params.evaluate.bootstrap_rounds} rounds)"
    )
    lines = [
        f"## Metrics (test set, {int(m.get('test_rows', 0))} rows)",
        "",
        "| metric | value |",
        "|---|---|",
        f"| ROC AUC | {auc} |",
        f"| PR AUC | {_num(m.get('pr_auc'))} |",
        f"| log loss | {_num(m.get('log_loss'))} |",
        f"| Brier score | {_num(m.get('brier'))} |",
    ]
    segments = m.get("segments") or {}
    if segments:
        lines += [
            "",
            f"### ROC AUC per `{card.params.data.segment_column}`",
            "",
            "| segment | rows | positives | ROC AUC |",
            "|---|---:|---:|---:|",
        ]
        for name, seg in sorted(segments.items()):
            auc_text = _num(seg.get("roc_auc")) if seg.get("roc_auc") is not None else "n/a"
            if seg.get("roc_auc") is None:
                auc_text += " (one class only)"
            lines.append(f"| `{name}` | {seg.get('rows')} | {seg.get('positives')} | {auc_text} |")
    return lines


def _gate_section(card: ModelCard) -> list[str]:
    g = card.gate
    if not g:
        return ["## Gate", "", "Not recorded: the gate report was not found."]
    verdict = "passed" if g.get("passed") else "FAILED"
    lines = ["## Gate", "", f"**{verdict}**: {'; '.join(g.get('reasons', []))}.", ""]
    t = g.get("thresholds", {})
    lines.append(
        f"Rules: ROC AUC at least {t.get('min_auc')}; against the champion, a drop of at most "
        f"{t.get('max_auc_drop')} unless a paired DeLong test is not significant at "
        f"{t.get('alpha')}."
    )
    champion = g.get("champion")
    if champion:
        lines += [
            "",
            f"Champion version {champion['champion_version']}: ROC AUC "
            f"{_num(champion['champion_auc'])}, difference {champion['difference']:+.4f} "
            f"(CI {champion['ci_low']:+.4f} to {champion['ci_high']:+.4f}, "
            f"p = {champion['p_value']:.3g}).",
        ]
    elif g.get("champion_note"):
        lines += ["", f"{str(g['champion_note']).capitalize()}."]
    return lines


def render_card(card: ModelCard, version: str, registered_at: str) -> str:
    """The card as markdown."""
    c = card.params.register_.card
    d = card.params.data
    lines = [
        f"# Model card: {card.model_name} version {version}",
        "",
        f"Registered {registered_at} from MLflow run `{card.run_id}`. Written by `modelops "
        "register` from params.yaml, dvc.lock and the pipeline's reports.",
        "",
        "## Intended use",
        "",
        c.intended_use.strip() or "Not stated: describe it in `register.card.intended_use`.",
    ]
    if c.out_of_scope.strip():
        lines += ["", f"**Out of scope:** {c.out_of_scope.strip()}"]
    lines += ["", *_data_section(card), ""]
    lines += [
        f"## Features ({len(d.features)})",
        "",
        f"- numeric ({len(d.numeric_features)}): {', '.join(d.numeric_features) or '-'}",
        f"- categorical ({len(d.categorical_features)}): "
        f"{', '.join(d.categorical_features) or '-'}",
        f"- model: `{card.params.train.model}`",
        "",
        *_metrics_section(card),
        "",
        *_gate_section(card),
        "",
        "## Lineage",
        "",
        "| | |",
        "|---|---|",
        f"| MLflow run | `{card.run_id}` |",
        f"| git commit | `{card.git_commit}` |",
        f"| data MD5 read by training | `{card.run_data_md5}` |",
        f"| dvc.lock MD5 | `{card.lock_md5 or 'not found'}` |",
        f"| model | `{card.model_uri}` |",
    ]
    if card.missing:
        lines += ["", "**Missing inputs:** " + "; ".join(card.missing) + "."]
    return "\n".join(lines) + "\n"


def log_card(registry: RegistryClient, ref: VersionRef, card: ModelCard) -> str:
    """Log the card on the version's run and point the version's tag `model_card` at it."""
    registered = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ref.created_at / 1000))
    registry.log_text(ref.run_id, render_card(card, ref.version, registered), CARD_FILE)
    where = f"runs:/{ref.run_id}/{CARD_FILE}"
    registry.tag_version(ref.name, ref.version, {CARD_TAG: where})
    return where
