"""The monitor job's glue: step outputs from a drift verdict and the drift issue's body."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelops.errors import DataError
from modelops.monitor.issue import ISSUE_MARKER, issue_title, write_issue, write_outputs

REPORT = {"verdict": "drift", "rows": 812, "drifted": ["Income", "__score__"], "warnings": []}
MARKDOWN = """# Drift report

**Verdict: drift in Income, score (812 rows)**

| column | kind | PSI | test | statistic | p-value | status |
|---|---|---|---|---|---|---|
| Income | numeric | 0.6 | ks | 0.3 | 1e-9 | DRIFT |

![drift_features](drift_features.png)
"""


@pytest.mark.parametrize(
    ("verdict", "code", "retrain"),
    [
        ("drift", 3, "true"),
        ("warning", 0, "false"),
        ("ok", 0, "false"),
        ("inconclusive", 4, "false"),
    ],
)
def test_only_drift_asks_for_a_retrain(
    tmp_path: Path, verdict: str, code: int, retrain: str
) -> None:
    out = tmp_path / "github_output"
    out.write_text("earlier=1\n")
    write_outputs(out, verdict, code)
    assert out.read_text() == f"earlier=1\nverdict={verdict}\nretrain={retrain}\nexit_code={code}\n"


def test_issue_body_keeps_the_table_and_drops_the_images(tmp_path: Path) -> None:
    (tmp_path / "drift.json").write_text(json.dumps(REPORT))
    (tmp_path / "drift.md").write_text(MARKDOWN)
    outputs = tmp_path / "out"
    title = write_issue(
        tmp_path, tmp_path / "issue.md", "production", "s3://b/logs/", "https://r/1", outputs
    )
    assert title == "Data drift in production: Income, score"
    body = (tmp_path / "issue.md").read_text()
    assert body.startswith(ISSUE_MARKER + "\n")
    assert "verdict `drift` on 812 rows of `s3://b/logs/`" in body
    assert "[monitor run](https://r/1)" in body
    assert "| Income | numeric | 0.6 | ks | 0.3 | 1e-9 | DRIFT |" in body
    assert "## Drift report" in body and "\n# Drift report" not in body
    assert "![" not in body
    assert outputs.read_text() == f"issue_title={title}\nissue_body={tmp_path / 'issue.md'}\n"


def test_no_drifted_column_gives_a_plain_title() -> None:
    assert issue_title({"drifted": []}, "staging") == "Data drift in staging"


def test_a_missing_report_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="run `modelops drift --out-dir"):
        write_issue(tmp_path, tmp_path / "issue.md", "production", "x", None)
