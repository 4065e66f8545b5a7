"""Cohort health classification and the sample-ratio test (cross-checked against statsmodels/scipy)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.gof import chisquare as sm_chisquare

from functions.services.holdouts.health_rules import Srm, classify, sample_ratio


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sample_ratio_matches_statsmodels_on_generated_data(seed):
    rng = np.random.default_rng(seed)
    n = 5000
    share = 0.1
    holdout = int(rng.binomial(n, share))
    srm = sample_ratio(n, holdout, share)
    chi2, p = sm_chisquare([holdout, n - holdout], [n * share, n * (1 - share)])
    assert srm.chi_square == pytest.approx(float(chi2))
    assert srm.p_value == pytest.approx(float(p))
    # and against the closed form for one degree of freedom
    z = (holdout - n * share) / np.sqrt(n * share * (1 - share))
    assert srm.p_value == pytest.approx(2 * stats.norm.sf(abs(z)))


def test_sample_ratio_flags_a_broken_split_and_passes_a_fair_one():
    assert sample_ratio(10_000, 1_300, 0.1).p_value < 0.001
    assert sample_ratio(10_000, 1_010, 0.1).p_value > 0.05


def test_sample_ratio_is_undefined_without_data_or_for_degenerate_shares():
    assert sample_ratio(0, 0, 0.1) == Srm(None, None)
    assert sample_ratio(100, 100, 1.0) == Srm(None, None)


def test_classify_levels_and_reasons():
    fair = Srm(0.5, 0.5)
    assert classify(fair, 0.0, 0, True) == ("HEALTHY", [])
    status, reasons = classify(fair, 0.02, 0, True)
    assert status == "WARNING" and "goal" in reasons[0]
    status, reasons = classify(Srm(40.0, 1e-9), 0.0, 0, True)
    assert status == "CRITICAL" and "sample ratio" in reasons[0]
    status, reasons = classify(fair, 0.06, 2, False)
    assert status == "CRITICAL" and len(reasons) == 3
