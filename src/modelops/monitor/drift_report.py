"""Write a drift report as JSON (the machine-readable verdict), markdown and HTML with plots."""

from __future__ import annotations

import base64
import html
import json
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from modelops.config import Params
from modelops.monitor.drift import SCORE, ColumnDrift, DriftReport
from modelops.registry.client import RegistryClient

if TYPE_CHECKING:
    from matplotlib.axes import Axes

JSON_FILE = "drift.json"
MARKDOWN_FILE = "drift.md"
HTML_FILE = "drift.html"
FEATURES_PNG = "drift_features.png"
SCORE_PNG = "drift_score.png"
_MARK = {"ok": "ok", "warning": "WARNING", "drift": "DRIFT"}


def _number(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e6 else f"{value:.3g}"


def bin_names(column: ColumnDrift) -> list[str]:
    """Readable bin names: value ranges for numeric bins, categories as they are."""
    if column.edges is None:
        return list(column.bins)
    edges = column.edges
    names = []
    for i in range(len(edges) + 1):
        if i == 0:
            names.append(f"<={_number(edges[0])}" if edges else "all")
        elif i == len(edges):
            names.append(f">{_number(edges[-1])}")
        else:
            names.append(f"{_number(edges[i - 1])}-{_number(edges[i])}")
    return [*names, "missing"]


def _draw(axes: Axes, column: ColumnDrift) -> None:
    import numpy as np

    positions = np.arange(len(column.bins))
    axes.bar(positions - 0.2, column.reference_share, 0.4, label="reference", color="#8da0cb")
    axes.bar(positions + 0.2, column.current_share, 0.4, label="current", color="#fc8d62")
    axes.set_xticks(positions, bin_names(column), rotation=60, ha="right", fontsize=7)
    name = "score" if column.name == SCORE else column.name
    axes.set_title(f"{name}: PSI {column.psi:.3f} ({column.status})", fontsize=9)
    axes.tick_params(axis="y", labelsize=7)


def render_plots(report: DriftReport, out_dir: Path) -> list[Path]:
    """One grid of reference-vs-current bin shares per feature, one for the score."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    features = [c for c in report.columns if c.name != SCORE]
    if features:
        cols = min(4, len(features))
        rows = -(-len(features) // cols)
        figure, grid = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
        for axes, column in zip(grid.flat, features, strict=False):
            _draw(axes, column)
        for axes in list(grid.flat)[len(features) :]:
            axes.set_visible(False)
        grid.flat[0].legend(fontsize=7)
        figure.tight_layout()
        figure.savefig(out_dir / FEATURES_PNG, dpi=80)
        plt.close(figure)
        written.append(out_dir / FEATURES_PNG)
    scores = [c for c in report.columns if c.name == SCORE]
    if scores:
        figure, axes = plt.subplots(figsize=(6, 3.5))
        _draw(axes, scores[0])
        axes.legend(fontsize=7)
        figure.tight_layout()
        figure.savefig(out_dir / SCORE_PNG, dpi=80)
        plt.close(figure)
        written.append(out_dir / SCORE_PNG)
    return written


def _rows(report: DriftReport) -> list[list[str]]:
    out = []
    for c in report.columns:
        out.append(
            [
                "score" if c.name == SCORE else c.name,
                c.kind,
                f"{c.psi:.4f}",
                c.test,
                f"{c.statistic:.4f}",
                f"{c.p_value:.3g}",
                _MARK[c.status],
            ]
        )
    return out


HEADER = ["column", "kind", "PSI", "test", "statistic", "p-value", "status"]


def headline(report: DriftReport) -> str:
    """One line: the verdict and what caused it."""
    if report.verdict == "inconclusive":
        return f"inconclusive: {report.rows} rows, fewer than min_rows={report.min_rows}"
    detail = ""
    if report.drifted:
        detail = f": drift in {', '.join(report.drifted)}"
    elif report.warnings:
        detail = f": PSI above {report.psi_warning} in {', '.join(report.warnings)}"
    return f"{report.verdict}{detail} ({report.rows} rows)"


EXIT_OK, EXIT_DRIFT, EXIT_INCONCLUSIVE = 0, 3, 4


def exit_code(report: DriftReport, fail_on: str = "drift") -> int:
    """0 no drift, 3 drift (or warning when fail_on is 'warning'), 4 too few rows to judge."""
    if report.verdict == "inconclusive":
        return EXIT_INCONCLUSIVE
    if report.verdict == "drift" or (fail_on == "warning" and report.verdict == "warning"):
        return EXIT_DRIFT
    return EXIT_OK


def to_markdown(report: DriftReport, images: list[Path]) -> str:
    lines = [
        "# Drift report",
        "",
        f"**Verdict: {headline(report)}**",
        "",
        f"Thresholds: PSI warning {report.psi_warning}, drift {report.psi_alert} with a "
        f"significant test (alpha {report.alpha}, {report.alpha_per_test:.3g} per test).",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
        *("| " + " | ".join(row) + " |" for row in _rows(report)),
        "",
    ]
    for key, value in report.sources.items():
        lines.append(f"- {key}: {value}")
    lines += [f"- note: {note}" for note in report.notes]
    lines += ["", *(f"![{image.stem}]({image.name})" for image in images)]
    return "\n".join(lines) + "\n"


def to_html(report: DriftReport, images: list[Path]) -> str:
    """A single self-contained page (plots embedded) to attach to a job or open locally."""
    esc = html.escape
    table = "".join(
        f'<tr class="{esc(row[-1].lower())}">'
        + "".join(f"<td>{esc(v)}</td>" for v in row)
        + "</tr>"
        for row in _rows(report)
    )
    pictures = "".join(
        f'<img alt="{esc(p.stem)}" src="data:image/png;base64,'
        f'{base64.b64encode(p.read_bytes()).decode()}">'
        for p in images
    )
    items = [f"<li>{esc(k)}: {esc(str(v))}</li>" for k, v in report.sources.items()]
    items += [f"<li>note: {esc(n)}</li>" for n in report.notes]
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Drift report</title><style>"
        "body{font-family:sans-serif;margin:2em}td,th{padding:.2em .8em;text-align:left}"
        "tr.drift{background:#fdd}tr.warning{background:#ffd}img{max-width:100%}</style></head>"
        f"<body><h1>Drift report</h1><p><b>Verdict: {esc(headline(report))}</b></p>"
        f"<p>Thresholds: PSI warning {report.psi_warning}, drift {report.psi_alert} with a "
        f"significant test (alpha {report.alpha}, {report.alpha_per_test:.3g} per test).</p>"
        "<table><tr>" + "".join(f"<th>{h}</th>" for h in HEADER) + f"</tr>{table}</table>"
        f"<ul>{''.join(items)}</ul>{pictures}</body></html>\n"
    )


def write_report(report: DriftReport, out_dir: Path, plots: bool = True) -> dict[str, Path]:
    """drift.json, drift.md, drift.html and the PNGs in out_dir; returns what was written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    images = render_plots(report, out_dir) if plots else []
    paths = {
        "json": out_dir / JSON_FILE,
        "markdown": out_dir / MARKDOWN_FILE,
        "html": out_dir / HTML_FILE,
    }
    paths["json"].write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    paths["markdown"].write_text(to_markdown(report, images))
    paths["html"].write_text(to_html(report, images))
    return paths


def run_drift(
    data: Path,
    reference: str,
    params: Params,
    out_dir: Path,
    reference_data: Path | None = None,
    model_version: str | None = None,
    plots: bool = True,
    registry: RegistryClient | None = None,
    environment: str | None = None,
) -> DriftReport:
    """Read the rows and the reference, compare them, write the report; returns it.

    `reference` is a model folder, a registry URI (models:/name@alias, read through
    `registry`) or a reference.json.
    With a model, rows without a served score are scored by it, so the score is judged too.
    """
    from modelops.monitor.drift import check_columns, compare
    from modelops.monitor.inputs import read_current, read_table
    from modelops.pipeline.evaluate import load_local_model, score
    from modelops.registry.model_source import local_model, read_reference, reference_of

    current = read_current(data, model_version, environment)
    features = [f for f in params.data.features if f not in current.redacted]
    if current.redacted:
        current.notes.append(
            f"{', '.join(current.redacted)}: redacted in the prediction log (serve.log_redact), "
            "not judged"
        )
    if current.frame.empty:  # no traffic in the period: nothing to judge, not an error
        report = DriftReport.empty(params.drift, [*current.notes, f"{data}: no rows"])
        report.sources = {"data": ", ".join(current.files), "reference": reference}
        write_report(report, out_dir, plots)
        return report
    check_columns(current.frame, params.data, str(data), skip=current.redacted)
    with ExitStack() as stack:
        model = None
        if reference.endswith(".json") and Path(reference).is_file():
            ref = read_reference(Path(reference))
        else:
            model_dir = stack.enter_context(local_model(reference, registry))
            ref = reference_of(model_dir)
            if params.drift.score:
                model = load_local_model(model_dir)
        scores = current.scores
        if scores is None and model is not None:
            scores = score(model, current.frame, params)
            current.notes.append("the rows had no served score: scored them with the model")
        reference_frame = reference_scores = None
        if reference_data is not None:
            reference_frame = read_table(reference_data)
            check_columns(reference_frame, params.data, str(reference_data))
            if model is not None:
                reference_scores = score(model, reference_frame, params)
    report = compare(
        current.frame,
        ref,
        params.drift,
        features,
        scores=scores,
        reference_frame=reference_frame,
        reference_scores=reference_scores,
    )
    report.notes = current.notes + report.notes
    report.sources = {
        "data": ", ".join(current.files),
        "reference": reference,
        "reference_rows": ref.get("rows"),
        **({"reference_data": str(reference_data)} if reference_data else {}),
        **({"model_versions_in_logs": current.model_versions} if current.model_versions else {}),
    }
    write_report(report, out_dir, plots)
    return report
