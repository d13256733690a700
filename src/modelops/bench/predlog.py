"""What the prediction log costs the request path, plain and with `serve.log_redact`.

    python -m modelops.bench.predlog --out bench/results/predlog.json

`PredictionLog.submit` is the only part of logging that runs on a request (serializing the
lines, and redacting them first when the model carries a policy); the writer thread does the
I/O. Both variants run side by side in one process on the same real-shaped record (a credit
row), for 1- and 10-row requests, best of a few repeats, so the ratio is what to read.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from modelops.registry.log_policy import LogRedaction
from serving.predlog import Entry, PredictionLog
from serving.redact import Redactor, build_redactor

RECORD = {
    "Seniority": 9.0, "Home": "rent", "Time": 60.0, "Age": 30.0, "Marital": "married",
    "Records": "no", "Job": "freelance", "Expenses": 73.0, "Income": 129.0, "Assets": 0.0,
    "Debt": 0.0, "Amount": 800.0, "Price": 846.0,
}  # fmt: skip
POLICY = LogRedaction(drop=["Age", "Income"], hash=["Job"])


def submit_us_per_row(redact: Redactor | None, rows: int, requests: int) -> float:
    """Microseconds per row that `submit` takes (the writer flushes only at close)."""
    with tempfile.TemporaryDirectory(prefix="bench-predlog-") as folder:
        log = PredictionLog(folder, {"model_version": "1"}, 300.0, 10**9, redact=redact)
        log.start()
        entry = Entry("r", time.time(), "/predict", [RECORD] * rows, [0.3] * rows, ["n"] * rows)
        started = time.perf_counter()
        for _ in range(requests):
            log.submit(entry)
        took = time.perf_counter() - started
        log.close()
    return took / (requests * rows) * 1e6


def run(requests: int, repeats: int) -> dict[str, Any]:
    redactor = build_redactor(POLICY, "bench-salt-0123456789")
    results = []
    for rows in (1, 10):
        plain = min(submit_us_per_row(None, rows, requests) for _ in range(repeats))
        redacted = min(submit_us_per_row(redactor, rows, requests) for _ in range(repeats))
        results.append(
            {
                "rows_per_request": rows,
                "plain_us_per_row": round(plain, 2),
                "redacted_us_per_row": round(redacted, 2),
                "redacted_over_plain": round(redacted / plain, 2),
            }
        )
    return {
        "policy": {"drop": POLICY.drop, "hash": POLICY.hash},
        "requests": requests,
        "repeats": repeats,
        "results": results,
        "machine": {"python": platform.python_version(), "load_avg_1m": os.getloadavg()[0]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/predlog.json"))
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    result = run(args.requests, args.repeats)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for row in result["results"]:
        print(
            f"{row['rows_per_request']}-row requests: submit {row['plain_us_per_row']} us/row "
            f"plain, {row['redacted_us_per_row']} us/row redacted "
            f"(x{row['redacted_over_plain']})"
        )
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
