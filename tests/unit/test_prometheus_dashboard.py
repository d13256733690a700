"""Grafana dashboard: every query is valid PromQL (promtool parses it) and names real series.

promtool has no "parse this expression" command, so each query (Grafana variables replaced by
sample values) becomes a recording rule in a generated rules file and `promtool check rules`
parses it. Metric names must be the service's contract or a recorded series of our rules.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "infra" / "local" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "modelops.json"
RULES = sorted((ROOT / "infra" / "local" / "prometheus" / "rules").glob("*.yml"))
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

CONTRACT = {
    "modelops_http_requests_total",
    "modelops_http_request_duration_seconds_bucket",
    "modelops_prediction_score_bucket",
    "modelops_predictions_total",
    "modelops_feature_bin_total",
    "modelops_feature_reference_proportion",
    "modelops_model_info",
    "modelops_model_ready",
    "up",
    "ALERTS",
}
SAMPLE_VALUES = {
    "$__rate_interval": "20s",
    "$__interval": "5s",
    "$__range": "1h",
    "$track": "stable",
    "$feature": "Income",
}
PROMQL_WORDS = {
    "sum", "by", "without", "rate", "increase", "histogram_quantile", "max", "min", "on",
    "ignoring", "group_left", "and", "or", "unless", "bool", "vector", "abs", "clamp_min", "ln",
}  # fmt: skip


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) of every target in every panel."""
    return [
        (panel["title"], target["expr"])
        for panel in board["panels"]
        for target in panel.get("targets", [])
    ]


def substitute(expr: str) -> str:
    for variable, value in SAMPLE_VALUES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
    return expr


def variable_selectors(board: dict[str, Any]) -> list[str]:
    """The series selector inside each template variable's label_values(selector, label)."""
    out = []
    for variable in board["templating"]["list"]:
        match = re.fullmatch(r"label_values\((.+), *(\w+)\)", variable["query"]["query"])
        assert match, variable["query"]
        out.append(match.group(1))
    return out


def recorded_names() -> set[str]:
    names = set()
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            names |= {rule["record"] for rule in group["rules"] if "record" in rule}
    return names


def test_every_query_parses_with_promtool(tmp_path: Path) -> None:
    board = dashboard()
    exprs = [substitute(e) for _, e in queries(board)] + variable_selectors(board)
    assert len(exprs) >= 20
    rules = {
        "groups": [
            {
                "name": "dashboard-queries",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": e} for i, e in enumerate(exprs)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(exprs)} rules found" in result.stdout


def test_promtool_check_rejects_a_broken_query(tmp_path: Path) -> None:
    """The check above can fail: a query with a typo is refused."""
    path = tmp_path / "bad.yml"
    bad = "sum by (track (rate(modelops_http_requests_total[5m]))"
    path.write_text(
        yaml.safe_dump({"groups": [{"name": "g", "rules": [{"record": "x:y", "expr": bad}]}]})
    )
    result = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode != 0


def test_queries_name_only_contract_metrics_and_recorded_series() -> None:
    board = dashboard()
    known = CONTRACT | recorded_names()
    for title, expr in queries(board):
        text = re.sub(r'"[^"]*"', '""', substitute(expr))  # drop label values
        text = re.sub(r"\[[^\]]*\]", "", text)  # drop range durations
        text = re.sub(r"\{[^}]*\}", "", text)  # drop matchers
        text = re.sub(r"\b(by|without|on|ignoring|group_left) *\([^)]*\)", r"\1", text)
        names = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", text)) - PROMQL_WORDS
        unknown = names - known
        assert not unknown, f"{title}: {expr} uses unknown series {unknown}"


def test_panels_cover_the_monitoring_layers() -> None:
    board = dashboard()
    exprs = " ".join(e for _, e in queries(board))
    for needed in (
        "modelops_http_requests_total",  # traffic
        "modelops_http_request_duration_seconds_bucket",  # latency percentiles
        "modelops:http_errors:ratio_rate5m",  # errors
        "modelops_prediction_score_bucket",  # score distribution
        "modelops:feature_psi:5m",  # PSI per feature
        "modelops:score_psi:5m",
        "modelops:predictions_positive:ratio_rate5m",  # business impact
    ):
        assert needed in exprs, needed
    titles = {p["title"] for p in board["panels"]}
    assert {"Score distribution: stable", "Score distribution: canary"} <= titles
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert any("Canary vs stable" in r for r in rows)


def test_layout_ids_and_datasource() -> None:
    board = dashboard()
    provisioned = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    uid = provisioned["datasources"][0]["uid"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        area = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == uid
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/modelops.yml").read_text())
    assert provider["providers"][0]["options"]["path"].endswith("/modelops")
