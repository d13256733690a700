"""What the scheduled monitor job does with a drift report: step outputs and the issue body.

`modelops drift --outputs FILE` appends the verdict as step outputs (`verdict`, `retrain`,
`exit_code`); `modelops drift-issue` turns the written report (drift.json + drift.md) into
the body of the issue the workflow opens, so the workflow itself holds no logic.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modelops.errors import DataError

ISSUE_MARKER = "<!-- modelops-drift -->"
ISSUE_LABEL = "model-drift"
_IMAGE_LINE = "!["


def write_outputs(path: Path, verdict: str, code: int) -> None:
    """Append `verdict=`, `retrain=` (true only on drift, exit 3) and `exit_code=` lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(f"verdict={verdict}\nretrain={str(code == 3).lower()}\nexit_code={code}\n")


def read_report(report_dir: Path) -> tuple[dict[str, Any], str]:
    """drift.json and drift.md from a `modelops drift --out-dir` folder."""
    json_file, markdown_file = report_dir / "drift.json", report_dir / "drift.md"
    missing = [str(p) for p in (json_file, markdown_file) if not p.is_file()]
    if missing:
        raise DataError(
            f"no drift report in {report_dir} (missing {', '.join(missing)}): "
            f"run `modelops drift --out-dir {report_dir}` first"
        )
    report: dict[str, Any] = json.loads(json_file.read_text(encoding="utf-8"))
    return report, markdown_file.read_text(encoding="utf-8")


def issue_title(report: dict[str, Any], environment: str) -> str:
    drifted = report.get("drifted") or []
    names = ", ".join("score" if name == "__score__" else name for name in drifted)
    what = f": {names}" if names else ""
    return f"Data drift in {environment}{what}"


def issue_body(
    report: dict[str, Any],
    markdown: str,
    environment: str,
    logs: str,
    run_url: str | None,
) -> str:
    """The issue: marker, what happened and what was done, then the report without images."""
    run = f"[monitor run]({run_url})" if run_url else "the monitor run"
    lines = [
        ISSUE_MARKER,
        f"**{issue_title(report, environment)}**: verdict `{report['verdict']}` on "
        f"{report['rows']} rows of `{logs}`.",
        "",
        "The train workflow was dispatched to retrain on `main`'s data: a challenger it "
        "registers is deployed through the canary (deploy.yml). If the data behind `main` has "
        "not been refreshed since the last training, that run registers nothing: update the "
        "data first. The plots and the HTML report are in the `drift-report` artifact of "
        f"{run}.",
        "",
    ]
    for line in markdown.splitlines():
        if line.startswith("# "):
            line = "#" + line  # the report's title becomes a section of the issue
        if not line.startswith(_IMAGE_LINE):
            lines.append(line)
    return "\n".join(lines).rstrip() + "\n"


def write_issue(
    report_dir: Path,
    out: Path,
    environment: str,
    logs: str,
    run_url: str | None,
    outputs: Path | None = None,
) -> str:
    """Write the issue body to `out`; append `issue_title=` and `issue_body=` to `outputs`."""
    report, markdown = read_report(report_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(issue_body(report, markdown, environment, logs, run_url), encoding="utf-8")
    title = issue_title(report, environment)
    if outputs is not None:
        with outputs.open("a", encoding="utf-8") as handle:
            handle.write(f"issue_title={title}\nissue_body={out}\n")
    return title
