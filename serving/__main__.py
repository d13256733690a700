"""`python -m serving [--model ...] [--port ...] [--workers ...]`: see serving.launcher."""

from serving.launcher import main

if __name__ == "__main__":  # spawned workers import this module too; only the launcher runs
    raise SystemExit(main())
