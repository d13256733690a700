"""Rerunnable benchmarks; each writes a JSON file under bench/results/."""
