"""Benchmarks: one script per budget. `make bench` (python -m benchmarks) prints one table."""
