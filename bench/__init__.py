"""Benchmarks: ``make bench`` (``python -m bench``) runs every scenario, prints a table and
writes ``bench/results/latest.json``. Each scenario bounds its own time and cleans up after itself."""
