"""Unit-level metric data in the metric store: landing facts, and reading back only sufficient
statistics and counts for sweeps and analyses."""
