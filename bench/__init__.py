"""Benchmarks: `python -m bench NAME`. Each compares ours with peers in the same run and
prints one JSON object as its last line (see bench/report.py)."""
