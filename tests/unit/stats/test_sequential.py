"""Confidence sequences: equal to GrowthBook's gbstats at the same tuning, and valid under peeking;
guardrails calibrated on sparse, heavy-tailed data in both harm directions (bench calibration has
the full grid)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from pydantic import ValidationError

from bench import peers
from bench.simulation import Rate, cumulative_sums, peeking_false_kills
from functions.core.stats.sequential import (
    GuardrailVerdict,
    absolute_guardrail,
    confidence_sequence,
    relative_check,
    relative_guardrail,
)
from functions.core.stats.sufficient import MomentStats
from functions.models.experiments import Guardrail
from functions.services.experiments.guardrails import evaluate


@pytest.mark.slow  # builds the gbstats venv (.venv-peers) on first use
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


# --- calibration on sparse, heavy-tailed data (issue 11, finding 2) -------------------------------
def _sweeps(rng: np.random.Generator, draw, looks: int, per_look: int) -> list[MomentStats]:
    """Cumulative statistics after each sweep of `per_look` new units (what the shards add up to)."""
    counts, sums, squares = cumulative_sums(draw(rng, looks * per_look), per_look)
    return [MomentStats(n, s, q) for n, s, q in zip(counts.tolist(), sums.tolist(), squares.tolist(), strict=True)]


def _false_breach_rate(check, draw, sims: int, looks: int = 50, per_look: int = 100, seed: int = 11) -> Rate:
    """A/A over `looks` sweeps: the share of simulations with any breach."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(sims):
        control, treatment = _sweeps(rng, draw, looks, per_look), _sweeps(rng, draw, looks, per_look)
        hits += any(check(c, t).breached for c, t in zip(control, treatment, strict=True))
    return Rate(hits, sims)


def _payers(rng: np.random.Generator, size: int) -> np.ndarray:
    """Revenue with 20% payers, lognormal(sigma=2) amounts of mean 10."""
    return (rng.random(size) < 0.2) * rng.lognormal(np.log(10) - 2, 2.0, size)


def _conversions(rng: np.random.Generator, size: int) -> np.ndarray:
    return (rng.random(size) < 0.005).astype(float)


@pytest.mark.slow
def test_a_fall_guardrail_on_sparse_revenue_no_longer_breaches_on_noise():
    # Before: the variance of an arm that is low by chance was low too; 25% false breaches here.
    rate = _false_breach_rate(lambda c, t: relative_guardrail(c, t, "DECREASE", 0.0, min_units=100), _payers, 400)
    assert rate.ci()[1] < 0.05, rate.to_dict()


@pytest.mark.slow
def test_a_fall_guardrail_on_a_rare_conversion_no_longer_breaches_on_noise():
    # 0.5% conversion, 400 units per arm per sweep: 21% false breaches before.
    rate = _false_breach_rate(lambda c, t: relative_guardrail(c, t, "DECREASE", 0.0, min_units=100),
                              _conversions, 400, per_look=400)
    assert rate.ci()[1] < 0.05, rate.to_dict()


def _sweep_verdict(guardrail: dict):
    """The sweep's call site, functions/services/experiments/guardrails.evaluate, as a check."""
    doc = {"variants": [{"key": "control"}, {"key": "treatment"}], "guardrails": [{"metric": "m", **guardrail}]}

    def check(control: MomentStats, treatment: MomentStats) -> GuardrailVerdict:
        (verdict,) = evaluate(doc, {"control": {"m": control}, "treatment": {"m": treatment}})
        return GuardrailVerdict(verdict["status"], verdict["kind"], None, None, None, "")
    return check


@pytest.mark.slow
def test_an_absolute_minimum_at_the_true_level_no_longer_breaches_on_noise():
    # 37-42% false breaches before (sigma=2 payers): the treatment's own variance shrank with its mean.
    check = _sweep_verdict({"harmfulDirection": "DECREASE", "absoluteMin": 2.0, "minUnitsPerArm": 100})
    rate = _false_breach_rate(check, _payers, 400)
    assert rate.ci()[1] < 0.05, rate.to_dict()


def test_a_minimum_on_an_amount_needs_the_control_arms_spread():
    r = np.random.default_rng(9)
    revenue = MomentStats.from_arrays(_payers(r, 5000))
    alone = absolute_guardrail(revenue, minimum=5.0)
    assert alone.status == "INSUFFICIENT_DATA" and "referenceArm" in alone.missing
    assert absolute_guardrail(revenue, minimum=5.0, reference=revenue).status == "BREACHED"
    assert absolute_guardrail(revenue, maximum=0.5).status == "BREACHED"  # a rise may use its own spread


def test_the_sweep_passes_the_control_and_the_configured_floor():
    r = np.random.default_rng(10)
    control = MomentStats.from_arrays((r.random(2000) < 0.02).astype(float))
    treatment = MomentStats.from_arrays((r.random(2000) < 0.02).astype(float))
    doc = {"variants": [{"key": "control"}, {"key": "treatment"}],
           "guardrails": [{"metric": "m", "harmfulDirection": "DECREASE", "maxRelativeDegradation": 0.1,
                           "minEffectiveEvents": 1000}]}
    (verdict,) = evaluate(doc, {"control": {"m": control}, "treatment": {"m": treatment}})
    assert verdict["status"] == "INSUFFICIENT_DATA" and verdict["missing"]["effectiveEvents"]["required"] == 1000
    with pytest.raises(ValidationError):
        Guardrail.model_validate({"metric": "m", "absoluteMin": 1.0, "minEffectiveEvents": 3})


def test_an_arm_with_zero_events_gets_no_zero_width_bound():
    control = MomentStats.from_arrays(np.r_[np.ones(3), np.zeros(597)])
    none = MomentStats.from_arrays(np.zeros(600))
    verdict = relative_guardrail(control, none, "DECREASE", 0.0, min_units=100)
    assert verdict.status == "INSUFFICIENT_DATA" and not verdict.breached  # was BREACHED with bound -1.0
    assert verdict.missing["effectiveEvents"]["have"] == {"control": 3.0, "treatmentExpected": 3.0}
    # An absolute limit on a 0/1 metric judges a zero-event arm against the variance the limit implies.
    floor = absolute_guardrail(none, minimum=0.005, min_units=100)
    assert floor.status == "OK" and floor.bound is not None and floor.bound > 0.005
    at_limit = absolute_guardrail(MomentStats.from_arrays(np.zeros(4000)), minimum=0.005, min_units=100)
    assert at_limit.bound is not None and 0 < at_limit.bound < 0.005 and at_limit.status == "BREACHED"


def test_a_real_collapse_is_still_caught():
    r = np.random.default_rng(5)
    control = MomentStats.from_arrays((r.random(3000) < 0.2).astype(float))
    fallen = MomentStats.from_arrays((r.random(3000) < 0.13).astype(float))  # -35% conversion
    none = MomentStats.from_arrays(np.zeros(3000))
    assert relative_guardrail(control, fallen, "DECREASE", 0.10).breached
    assert relative_guardrail(control, none, "DECREASE", 0.10).breached
    assert absolute_guardrail(fallen, minimum=0.2, reference=control).breached


def test_a_negative_control_mean_does_not_flip_the_relative_guardrail():
    r = np.random.default_rng(6)
    control = MomentStats.from_arrays(r.normal(-10, 1, 500))
    worse = MomentStats.from_arrays(r.normal(-20, 1, 500))  # net revenue fell further
    verdict = relative_guardrail(control, worse, "DECREASE", 0.1)
    assert verdict.status == "INSUFFICIENT_DATA" and "positiveControlMean" in verdict.missing
    assert absolute_guardrail(worse, minimum=-12.0, reference=control).breached


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_statistics_give_a_coded_status_and_strict_json(bad):
    good = MomentStats.from_arrays(np.arange(200.0))
    broken = MomentStats(200.0, bad, 1e6)
    for verdict in (relative_guardrail(good, broken, "DECREASE", 0.1), relative_guardrail(broken, good, "INCREASE", 0),
                    absolute_guardrail(broken, maximum=1.0), absolute_guardrail(good, minimum=1.0, reference=broken),
                    relative_guardrail(good, good, "INCREASE", bad)):
        assert verdict.status == "INVALID_DATA" and not verdict.breached
        json.dumps(verdict.to_dict(), allow_nan=False)
    assert confidence_sequence(good, broken) is None


def test_the_scalar_verdict_is_the_array_check_of_the_benchmark():
    r = np.random.default_rng(8)
    n = np.full(50, 800.0)
    c, t = r.lognormal(0, 1.5, (50, 800)), r.lognormal(0, 1.5, (50, 800)) * 0.9
    arrays = relative_check(n, c.sum(1), (c * c).sum(1), n, t.sum(1), (t * t).sum(1), "DECREASE", 0.0)
    for i in range(50):
        verdict = relative_guardrail(MomentStats.from_arrays(c[i]), MomentStats.from_arrays(t[i]), "DECREASE", 0.0)
        assert verdict.breached == bool(arrays.breached[i])
        assert verdict.bound == pytest.approx(float(arrays.bound[i]), rel=1e-12)


def test_a_sweep_before_any_data_waits_for_every_kind_of_guardrail():
    doc = {"variants": [{"key": "control"}, {"key": "treatment"}],
           "guardrails": [{"metric": "revenue", "harmfulDirection": "DECREASE", "maxRelativeDegradation": 0.05,
                           "absoluteMin": 1.0},
                          {"metric": "refund", "harmfulDirection": "INCREASE", "absoluteMax": 0.08}]}
    verdicts = evaluate(doc, {})  # no shard written yet: every arm's statistics are empty
    assert [v["kind"] for v in verdicts] == ["RELATIVE_DEGRADATION", "ABSOLUTE_MIN", "ABSOLUTE_MAX"]
    assert all(v["status"] == "INSUFFICIENT_DATA" and v["missing"]["unitsPerArm"]["required"] == 100 for v in verdicts)
    json.dumps(verdicts, allow_nan=False)
