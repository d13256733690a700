"""Record the metrics every analysis saw, and replay them under other thresholds.

During a canary the controller wraps its `MetricProvider` in a `RecordingMetrics`: every query
and its answer (or its error) is kept, and after each analysis one JSON line goes to
`run_dir/metrics-record.jsonl` with the analysis's context (step, weight, the step's age, the
windows) and its answers. `replay(record, params)` runs the same analysis on those answers
with `params` (other thresholds, another failure threshold) and walks the controller's rules
over them, so a threshold change is tried against past releases before it ships:

    modelops deploy canary --replay build/canary/metrics-record.jsonl --params params.yaml

The windows are the recorded ones (a replay cannot invent traffic that was not queried); a
change of `check_window_seconds` or `interval_seconds` therefore needs a new recording.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelops.config import Params
from modelops.deploy.analysis import Analysis, analyse
from modelops.deploy.metrics import MetricProvider, Sample
from modelops.errors import MetricsError, ModelopsError

RECORD_FILE = "metrics-record.jsonl"


class RecordingMetrics:
    """A MetricProvider that passes queries through and remembers every answer."""

    def __init__(self, inner: MetricProvider) -> None:
        self.inner = inner
        self._answers: dict[str, Any] = {}

    def query(self, promql: str) -> float | None:
        try:
            value = self.inner.query(promql)
        except MetricsError as error:
            self._answers[promql] = {"error": str(error)}
            raise
        self._answers[promql] = {"value": value}
        return value

    def query_vector(self, promql: str) -> list[Sample]:
        try:
            samples = self.inner.query_vector(promql)
        except MetricsError as error:
            self._answers[promql] = {"error": str(error)}
            raise
        self._answers[promql] = {"samples": [[dict(s.labels), s.value] for s in samples]}
        return samples

    def take(self) -> dict[str, Any]:
        """The answers since the last take (one analysis's worth)."""
        answers, self._answers = self._answers, {}
        return answers


def append_record(path: Path, context: dict[str, Any], answers: dict[str, Any]) -> None:
    """One analysis: its context and the answers to its queries, as one JSON line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({**context, "answers": answers}, allow_nan=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")


class RecordedMetrics:
    """Answers an analysis's queries from its recorded answers (MetricsError when absent)."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers

    def _answer(self, promql: str) -> dict[str, Any]:
        answer = self.answers.get(promql)
        if answer is None:
            raise MetricsError(
                f"the recording has no answer for {promql!r}: the analysis's windows or env "
                "differ from the recorded run's; replay with the recorded windows"
            )
        if "error" in answer:
            raise MetricsError(str(answer["error"]))
        return dict(answer)

    def query(self, promql: str) -> float | None:
        value = self._answer(promql).get("value")
        return None if value is None else float(value)

    def query_vector(self, promql: str) -> list[Sample]:
        return [Sample(labels, float(v)) for labels, v in self._answer(promql).get("samples", [])]


@dataclass(frozen=True)
class Replayed:
    """One recorded analysis judged again, and what the controller would have done."""

    at: float
    step: int
    weight: int
    age_s: float
    analysis: Analysis
    decision: str  # continue, next step, promote, roll back

    def line(self) -> str:
        return (
            f"+{self.age_s:5.0f}s step {self.step + 1} ({self.weight:3d}%) "
            f"{self.analysis.verdict:12s} -> {self.decision}: {self.analysis.summary()}"
        )


def read_record(path: Path) -> Iterator[dict[str, Any]]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ModelopsError(
            f"no metrics recording at {path}: every canary writes one to its run folder "
            f"({RECORD_FILE}); pass that file"
        ) from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except ValueError as error:
            raise ModelopsError(f"{path}:{number}: not a JSON line ({error})") from None


def replay(path: Path, params: Params) -> list[Replayed]:
    """Judge every recorded analysis with `params`; stop at the first roll back or promotion."""
    c = params.canary
    out: list[Replayed] = []
    failures: dict[str, int] = {}
    for record in read_record(path):
        analysis = analyse(
            RecordedMetrics(record["answers"]),
            params,
            str(record["env"]),
            float(record["window_s"]),
            float(record.get("stable_offset_s", 0)),
            score_window_s=record.get("score_window_s"),
        )
        step, weight, age = int(record["step"]), int(record["weight"]), float(record["age_s"])
        for name in analysis.failed:
            failures[name] = failures.get(name, 0) + 1
        over = [n for n in analysis.failed if failures[n] >= c.failure_threshold]
        if over:
            decision = "roll back (" + ", ".join(f"{n} failed {failures[n]} times" for n in over)
            decision += ")"
        elif analysis.verdict == "passed" and age >= c.interval_seconds - 1e-6:
            last = step + 1 >= int(record.get("steps", step + 1))
            decision = "promote" if last else "next step"
        else:
            decision = "continue"
        out.append(Replayed(float(record["at"]), step, weight, age, analysis, decision))
        if decision.startswith(("roll back", "promote")):
            break
    return out
