"""Confidence sequences: equal to GrowthBook's gbstats at the same tuning, and valid under peeking."""

from __future__ import annotations

import numpy as np
import pytest

from bench import peers
from functions.core.stats.sequential import absolute_guardrail, confidence_sequence, relative_guardrail
from functions.core.stats.simulation import peeking_false_kills
from functions.core.stats.sufficient import MomentStats


def test_bounds_equal_gbstats_sequential_test():
    r = np.random.default_rng(11)
    cases, ours = [], []
    for n_a, n_b, tuning, relative in [(500, 520, 5000, True), (5000, 4900, 5000, False), (300, 900, 1000, True),
                                       (20000, 20100, 20000, False)]:
        a, b = MomentStats.from_arrays(r.gamma(2, 5, n_a)), MomentStats.from_arrays(r.gamma(2, 5.3, n_b))
        raw_a, raw_b = a.reshift(), b.reshift()  # gbstats takes raw sums Σx, Σx²
        cases.append({"a": [a.n, raw_a.sum_x, raw_a.sum_x2], "b": [b.n, raw_b.sum_x, raw_b.sum_x2], "alpha": 0.05,
                      "tuning": tuning, "relative": relative})
        ours.append(list(confidence_sequence(a, b, relative=relative, alpha=0.05, tuning=tuning)))
    reference = peers.run(peers.GBSTATS_SEQUENTIAL, cases, timeout=900)
    assert np.allclose(ours, reference, rtol=1e-9, atol=0)


def test_peeking_fifty_times_keeps_false_kills_below_alpha_while_naive_testing_does_not():
    sequential, naive = peeking_false_kills(np.random.default_rng(2026), sims=300, looks=50, per_look=40)
    assert sequential.rate <= 0.05
    assert naive.rate > 0.15  # repeated fixed-horizon tests are far above their nominal 5%


def test_guardrail_breach_needs_the_bound_beyond_the_margin():
    r = np.random.default_rng(3)
    control = MomentStats.from_arrays(r.binomial(1, 0.05, 4000).astype(float))
    harmful = MomentStats.from_arrays(r.binomial(1, 0.09, 4000).astype(float))
    wobble = MomentStats.from_arrays(r.binomial(1, 0.052, 4000).astype(float))
    assert relative_guardrail(control, harmful, "INCREASE", 0.10).breached
    verdict = relative_guardrail(control, wobble, "INCREASE", 0.10)
    assert verdict.status == "OK" and verdict.observed is not None
    assert relative_guardrail(MomentStats.from_arrays([1.0] * 5), harmful, "INCREASE", 0.1).status == \
        "INSUFFICIENT_DATA"
    assert absolute_guardrail(harmful, maximum=0.06).breached
    assert not absolute_guardrail(wobble, maximum=0.08).breached
    assert absolute_guardrail(wobble, minimum=0.10).breached


@pytest.mark.parametrize("direction", ["INCREASE", "DECREASE"])
def test_harmful_direction_is_respected(direction):
    r = np.random.default_rng(4)
    control = MomentStats.from_arrays(r.normal(100, 10, 3000))
    up = MomentStats.from_arrays(r.normal(120, 10, 3000))
    down = MomentStats.from_arrays(r.normal(80, 10, 3000))
    worse = up if direction == "INCREASE" else down
    better = down if direction == "INCREASE" else up
    assert relative_guardrail(control, worse, direction, 0.05).breached
    assert not relative_guardrail(control, better, direction, 0.05).breached
