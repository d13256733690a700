"""schemathesis against the running service's own OpenAPI document: no server error, and the
answers match what the document promises (status codes, content types, bodies)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from serving.process import ServiceProcess

pytestmark = pytest.mark.integration
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


def requests_by_route(url: str) -> dict[tuple[str, str], float]:
    text = httpx.get(f"{url}/metrics").text
    return {
        (s.labels["route"], s.labels["status"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "modelops_http_requests_total"
    }


def test_schemathesis_finds_nothing(trained_model: dict[str, Any], tmp_path: Path) -> None:
    service = ServiceProcess(
        model=trained_model["model_dir"],
        env={"MODELOPS_PREDICTION_LOG": str(tmp_path / "predictions")},
        log=tmp_path / "service.log",
    )
    with service:
        before = requests_by_route(service.url)
        done = subprocess.run(
            [str(SCHEMATHESIS), "run", f"{service.url}/openapi.json",
             "--checks", "all",
             # dataframe_split's rows are arrays whose items' types depend on "columns":
             # JSON Schema cannot say that, so valid-looking rows can be (rightly) refused.
             "--exclude-checks", "positive_data_acceptance",
             "--max-examples", "150", "--seed", "20261123",
             "--generation-database", "none", "--no-color",
             "--report", "ndjson", "--report-dir", str(tmp_path / "report")],
            capture_output=True, text=True, timeout=240, cwd=tmp_path,
        )  # fmt: skip
        after = requests_by_route(service.url)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "No issues found" in output
    requests = {k: v - before.get(k, 0) for k, v in after.items() if v > before.get(k, 0)}
    assert sum(v for (route, _), v in requests.items() if route == "/predict") >= 150
    assert sum(v for (route, _), v in requests.items() if route == "/invocations") >= 150
    assert not [k for k in requests if k[1].startswith("5")], requests
    assert {s for (_, s) in requests} >= {"200", "400", "422"}  # bad input was really sent
    events = (tmp_path / "report").glob("*.ndjson")
    assert any(json.loads(line) for f in events for line in f.read_text().splitlines())
    assert "Traceback" not in (tmp_path / "service.log").read_text()
