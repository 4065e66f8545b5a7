"""A function's cold start loads only what serving needs. scipy.stats (about 0.8 s and 45 MB of a
fresh interpreter) and scipy.cluster with scipy.spatial (about 0.2 s) were loaded by `main` for a
normal quantile, one chi-square and a union-find used only when links are tracked; the core's
scipy.special gives the first two, and the union-find is imported where it is used."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from functions.core.stats import power, quality
from functions.services.holdouts import health_rules

ROOT = Path(__file__).resolve().parents[3]
HEAVY = ("scipy.stats", "scipy.spatial", "scipy.cluster", "pandas")


def test_importing_the_deployed_entry_points_loads_no_heavy_module() -> None:
    code = ("import json, sys; import main; "
            f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({HEAVY!r}))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("alpha", [0.001, 0.05, 0.2])
def test_the_critical_value_is_scipys_normal_quantile(alpha: float) -> None:
    assert power.z_two_sided(alpha) == pytest.approx(float(stats.norm.ppf(1 - alpha / 2)), rel=1e-12)


@pytest.mark.parametrize(("observed", "holdout", "share"), [(1000, 100, 0.1), (1000, 140, 0.1), (37, 1, 0.5)])
def test_the_cohort_sample_ratio_test_is_scipys_chi_square(observed: int, holdout: int, share: float) -> None:
    expected = [observed * share, observed * (1 - share)]
    reference = stats.chisquare([holdout, observed - holdout], expected)
    srm = health_rules.sample_ratio(observed, holdout, share)
    assert srm.chi_square == pytest.approx(float(reference.statistic), rel=1e-12)
    assert srm.p_value == pytest.approx(float(reference.pvalue), rel=1e-9)
    chi2, p = quality.chi_square(np.array([holdout, observed - holdout], dtype=float), np.array(expected), 1)
    assert (chi2, p) == (srm.chi_square, srm.p_value)
