"""What a canary decided and why: markdown summary, Prometheus textfile, timeline plot.

- `canary-summary.md`: the release, the decision and its reason, then one table per analysis
  (check, canary, stable, threshold, verdict, note) and the event log. The deploy workflow
  appends it to the job summary.
- `canary.prom`: OpenMetrics text for a textfile collector (node_exporter
  `--collector.textfile.directory`), rewritten after every transition: weight, step, phase,
  per-check verdicts, values and failure counts, decision time.
- `timeline.png`: canary weight over time above the error rate, p99 latency and score PSI of
  each interval, canary against stable, with the thresholds (matplotlib, Agg backend).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.openmetrics.exposition import generate_latest

from modelops.config import Params
from modelops.deploy.analysis import CHECKS, CheckResult
from modelops.deploy.gitops import write_bytes_atomic
from modelops.deploy.shadow import SHADOW_CHECKS
from modelops.deploy.state import CanaryState, Phase, StepRecord

SUMMARY = "canary-summary.md"
PROM = "canary.prom"
TIMELINE = "timeline.png"
UNITS = {"requests": "", "error_rate": "", "p99_latency": " ms", "score_psi": ""}
SHADOW_FORMATS = {
    "shadow_requests": "{:.0f}",
    "decision_agreement": "{:.2%}",
    "mean_score_diff": "{:.4f}",
    "max_score_diff": "{:.4f}",
    "shadow_score_psi": "{:.3f}",
    "shadow_error_rate": "{:.2%}",
    "shadow_p99_latency": "{:.1f} ms",
}


def _utc(at: float | None) -> str:
    if at is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(at))


def decision(state: CanaryState) -> str:
    return {
        Phase.SUCCEEDED: "PROMOTED",
        Phase.FAILED: "ROLLED BACK",
        Phase.ROLLING_BACK: "ROLLING BACK (not finished)",
        Phase.PROMOTING: "PROMOTING (not finished)",
    }.get(state.phase, f"IN PROGRESS ({state.phase.value})")


def _value(check: CheckResult, value: float | None) -> str:
    if value is None:
        return "no data"
    if math.isinf(value):
        return "inf"
    if check.name in SHADOW_FORMATS:
        return SHADOW_FORMATS[check.name].format(value)
    if check.name == "error_rate":
        return f"{value:.2%}"
    if check.name == "requests":
        return f"{value:.0f}"
    if check.name == "score_psi":
        return f"{value:.3f}"
    return f"{value:.1f}{UNITS[check.name]}"


def _threshold(check: CheckResult) -> str:
    t = check.threshold
    if t is None:
        return "-"
    if check.name in SHADOW_FORMATS:
        bound = ">=" if check.name in ("shadow_requests", "decision_agreement") else "<="
        return f"{bound} {SHADOW_FORMATS[check.name].format(t)}"
    return {
        "requests": f">= {t:.0f}",
        "error_rate": f"<= {t:.2%}",
        "p99_latency": f"<= {t:.1f} ms",
        "score_psi": f"<= {t:g}",
    }.get(check.name, f"{t:g}")


def render_markdown(state: CanaryState, params: Params) -> str:
    """The summary: decision, reason, settings, one table per analysis, events."""
    r, c = state.release, params.canary
    stable = (
        f"{r.stable_version} (`{r.stable_image}`)" if r.stable_version else "none (first deploy)"
    )
    lines = [
        f"## Canary of {r.model_name} version {r.canary_version} in {state.env}: {decision(state)}",
        "",
        f"**Reason:** {state.reason or '-'}",
        "",
        "| | |",
        "|---|---|",
        f"| canary | {r.canary_version} (`{r.canary_image}`) |",
        f"| stable | {stable} |",
        f"| steps | {', '.join(f'{s}%' for s in state.steps)} |",
        f"| step interval | {c.interval_seconds:g} s (score PSI over the step so far) |",
        f"| checks | every {c.check_every_s:g} s, 5xx/p99/requests over {c.hard_window_s:g} s |",
        f"| progress deadline | {c.progress_deadline_seconds:g} s per step |",
        f"| failure threshold | {c.failure_threshold} failures of one check |",
        f"| started | {_utc(state.started_at)} |",
        f"| decided | {_utc(state.decided_at)} |",
    ]
    if state.decided_at is not None:
        lines.append(f"| duration | {state.decided_at - state.started_at:.0f} s |")
    times = timings(state)
    if "traffic_to_stable_s" in times:
        lines.append(
            f"| canary traffic to all traffic back on stable | "
            f"{times['traffic_to_stable_s']:.1f} s |"
        )
    if "traffic_to_promoted_s" in times:
        lines.append(f"| canary traffic to promoted | {times['traffic_to_promoted_s']:.1f} s |")
    if state.failures:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(state.failures.items()))
        lines.append(f"| failed checks | {counts} |")
    for n, record in enumerate(state.history, start=1):
        a = record.analysis
        window = f"{a.window_s}s window"
        if a.score_window_s is not None and a.score_window_s != a.window_s:
            window += f" (score PSI {a.score_window_s}s)"
        if a.stable_offset_s:
            window += f", stable read {a.stable_offset_s}s earlier (no stable traffic at 100%)"
        where = (
            f"shadow ({params.canary.shadow.mirror_percent}% mirrored, no user traffic)"
            if record.phase == "shadow"
            else f"step {record.step + 1} ({record.weight}%)"
        )
        lines += [
            "",
            f"### Analysis {n}: {where} at {_utc(record.at)}, {window}: {a.verdict}",
            "",
            "| check | canary | stable | threshold | verdict | note |",
            "|---|---:|---:|---|---|---|",
        ]
        for check in a.checks:
            note = check.message.replace("|", "\\|").replace("\n", " ")
            lines.append(
                f"| {check.name} | {_value(check, check.canary)} | "
                f"{'(reference)' if check.name == 'score_psi' else _value(check, check.stable)} "
                f"| {_threshold(check)} | {check.verdict} | {note} |"
            )
    if state.events:
        lines += ["", "### Events", ""]
        lines += [f"- {_utc(e['at'])} [{e['phase']}] {e['message']}" for e in state.events]
    return "\n".join(lines) + "\n"


def timings(state: CanaryState) -> dict[str, float]:
    """Seconds from the canary's first traffic to the end: all traffic back on stable (a
    rollback) or on the new version (a promotion); what `make bench-canary` reports."""
    out: dict[str, float] = {}
    weights = state.weights
    first = next((at for at, w in weights if w > 0), None)
    if first is None or state.decided_at is None or len(weights) < 2:
        return out
    last_at, last_weight = weights[-1]
    if state.phase == Phase.FAILED and last_weight == 0:
        out["traffic_to_stable_s"] = last_at - first
    elif state.phase == Phase.SUCCEEDED and last_weight == 100:
        out["traffic_to_promoted_s"] = last_at - first
    out["traffic_to_decision_s"] = state.decided_at - first
    return out


def where(record: StepRecord) -> str:
    """`shadow` or `step N`, for one analysis."""
    return "shadow" if record.phase == "shadow" else f"step {record.step + 1}"


def render_timeline_text(state: CanaryState) -> str:
    """One line per analysis, for a terminal: time, step, weight, verdict, what was wrong."""
    start = state.started_at
    lines = []
    for record in state.history:
        a = record.analysis
        lines.append(
            f"+{record.at - start:6.1f}s  {where(record)}  {record.weight:3d}%  "
            f"{a.verdict:12s}  {a.summary()}"
        )
    lines.append(f"decision: {decision(state)} - {state.reason or '-'}")
    return "\n".join(lines)


def render_prom(state: CanaryState, mirror_percent: int = 0) -> bytes:
    """The decision metrics as OpenMetrics text."""
    reg = CollectorRegistry(auto_describe=True)
    base = ["model", "env"]
    ids = [state.release.model_name, state.env]

    def gauge(name: str, doc: str, labels: list[str] | None = None) -> Gauge:
        return Gauge(name, doc, base + (labels or []), registry=reg)

    gauge("modelops_canary_weight", "Percent of traffic on the release's new version").labels(
        *ids
    ).set(state.weight)
    gauge("modelops_canary_step", "Current canary step (1-based)").labels(*ids).set(
        state.step_index + 1
    )
    phase = gauge("modelops_canary_phase", "1 for the controller's current phase", ["phase"])
    for p in Phase:
        phase.labels(*ids, p.value).set(1 if state.phase == p else 0)
    info = gauge(
        "modelops_canary_release", "The release (value 1)", ["canary_version", "stable_version"]
    )
    info.labels(*ids, state.release.canary_version, state.release.stable_version or "").set(1)
    failures = gauge(
        "modelops_canary_check_failures", "Failed analyses per check in this release", ["check"]
    )
    for name in (*CHECKS, *SHADOW_CHECKS):
        failures.labels(*ids, name).set(state.failures.get(name, 0))
    shadowing = state.phase == Phase.SHADOWING and state.shadow_started_at is not None
    gauge(
        "modelops_canary_mirror_percent",
        "Percent of requests mirrored to the new version (shadow phase; answers discarded)",
    ).labels(*ids).set(mirror_percent if shadowing else 0)
    gauge("modelops_canary_analyses", "Analyses run in this release").labels(*ids).set(
        len(state.history)
    )
    if state.history:
        last = state.history[-1].analysis
        passed = gauge(
            "modelops_canary_check_passed", "1 if the check passed in the last analysis", ["check"]
        )
        verdict = gauge(
            "modelops_canary_check_verdict", "1 for the check's last verdict", ["check", "verdict"]
        )
        value = gauge(
            "modelops_canary_check_value",
            "Value of the check in the last analysis (latency in ms)",
            ["check", "track"],
        )
        for check in last.checks:
            passed.labels(*ids, check.name).set(1 if check.verdict == "passed" else 0)
            for v in ("passed", "failed", "inconclusive"):
                verdict.labels(*ids, check.name, v).set(1 if check.verdict == v else 0)
            for track, x in (("canary", check.canary), ("stable", check.stable)):
                if x is not None and math.isfinite(x):
                    value.labels(*ids, check.name, track).set(x)
    if state.decided_at is not None:
        gauge(
            "modelops_canary_decision_timestamp_seconds",
            "When the canary was promoted or rolled back (Unix time)",
            ["decision"],
        ).labels(*ids, "promoted" if state.promoted else "rolled_back").set(state.decided_at)
    return bytes(generate_latest(reg))


def write_prom(state: CanaryState, path: Path, mirror_percent: int = 0) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, render_prom(state, mirror_percent))
    return path


def plot_timeline(state: CanaryState, params: Params, path: Path) -> Path:
    """Weight over time above error rate, p99 and score PSI per interval (canary vs stable)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = params.canary
    start = state.started_at
    fig, axes = plt.subplots(5, 1, figsize=(9, 11), sharex=True)
    weight_ax, agree_ax, error_ax, p99_ax, psi_ax = axes
    end = state.decided_at if state.decided_at is not None else None
    times = [at - start for at, _ in state.weights]
    weights = [w for _, w in state.weights]
    last_t = max([*times, *(r.at - start for r in state.history), (end or start) - start, 1.0])
    if times:
        weight_ax.step([*times, last_t], [*weights, weights[-1]], where="post", color="tab:blue")
    weight_ax.set_ylabel("% traffic on new version\n(shaded: shadow, mirrored)")
    weight_ax.set_ylim(-5, 105)
    colors = {"passed": "tab:green", "failed": "tab:red", "inconclusive": "tab:gray"}
    panels = [
        (agree_ax, "decision_agreement", "shadow: decisions\nagreeing with stable", 1.0),
        (error_ax, "error_rate", "5xx share", c.max_error_rate),
        (p99_ax, "p99_latency", "p99 ms", c.max_p99_ms),
        (psi_ax, "score_psi", "score PSI vs stable", c.max_score_psi),
    ]
    # In the shadow phase the same panels show the candidate's mirrored answers.
    in_shadow = {"error_rate": "shadow_error_rate", "p99_latency": "shadow_p99_latency",
                 "score_psi": "shadow_score_psi"}  # fmt: skip
    for ax, name, label, limit in panels:
        xs, canary, stable, limits, verdicts = [], [], [], [], []
        for record in state.history:
            key = in_shadow.get(name, name) if record.phase == "shadow" else name
            if key not in {ch.name for ch in record.analysis.checks}:
                continue
            check = record.analysis.check(key)
            xs.append(record.at - start)
            canary.append(math.nan if check.canary is None else check.canary)
            stable.append(math.nan if check.stable is None else check.stable)
            limits.append(limit if check.threshold is None else check.threshold)
            verdicts.append(check.verdict)
        if xs:
            ax.plot(xs, canary, "-", color="tab:orange", label="canary")
            ax.scatter(xs, canary, c=[colors[v] for v in verdicts], zorder=3, s=25)
            if name != "score_psi":
                ax.plot(xs, stable, "--", color="tab:blue", label="stable")
            ax.step(xs, limits, where="mid", color="tab:red", linestyle=":", label="limit")
        else:
            ax.axhline(limit, color="tab:red", linestyle=":", label="limit")
        ax.set_ylim(bottom=0)
        ax.set_ylabel(label)
        ax.legend(loc="upper left", fontsize=7)
    shadow_times = [r.at - start for r in state.history if r.phase == "shadow"]
    for ax in axes:
        if end is not None:
            ax.axvline(end - start, color="black", linewidth=0.8)
        if state.shadow_started_at is not None and shadow_times:
            ax.axvspan(
                state.shadow_started_at - start, max(shadow_times), color="tab:purple", alpha=0.08
            )
        ax.grid(alpha=0.3)
    psi_ax.set_xlabel("seconds since the canary started")
    r = state.release
    fig.suptitle(f"{r.model_name} {r.canary_version} canary in {state.env}: {decision(state)}")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_reports(
    state: CanaryState, report_dir: Path, params: Params, *, plot: bool = True
) -> dict[str, Path]:
    """The reports into `report_dir` (the PNG unless `plot` is False); paths by kind."""
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    summary = report_dir / SUMMARY
    write_bytes_atomic(summary, render_markdown(state, params).encode("utf-8"))
    mirror = params.canary.shadow.mirror_percent
    paths = {"summary": summary, "metrics": write_prom(state, report_dir / PROM, mirror)}
    if plot:
        paths["timeline"] = plot_timeline(state, params, report_dir / TIMELINE)
    return paths
