"""Benchmarks: each module is runnable with ``python -m bench.<name>`` and writes JSON to bench/results/."""
