"""The batch decision: monotone, stable rollout exposure; layers; holdouts; expected split."""

from __future__ import annotations

from collections import Counter

import pytest
from scipy import stats

from functions.core.assignment.decision import (
    AssignmentConfig,
    ExperimentConfig,
    HoldoutCohortConfig,
    Status,
    decide,
    decide_batch,
    expected_split,
)
from functions.core.assignment.eligibility import compile_rules

STAGES = (0.01, 0.05, 0.10, 0.25, 0.50)
IDS = [f"unit-{i}" for i in range(100_000)]
VARIANTS = (("control", 50.0), ("t1", 25.0), ("t2", 25.0))


def experiment(stage, **kw):
    return ExperimentConfig("exp-1", "salt-exp-1", VARIANTS, rollout_stage=stage, **kw)


def arms(stage, ids=IDS, **kw):
    decisions = decide_batch(AssignmentConfig(experiments=(experiment(stage, **kw),)), ids)
    return [(d.experiments[0].status, d.experiments[0].variant) for d in decisions]


def test_exposure_is_monotone_and_variants_stable_across_stages():
    previous = None
    control_at_first = None
    for stage in STAGES:
        current = arms(stage)
        treated = {i for i, (s, v) in enumerate(current) if s == Status.ASSIGNED and v != "control"}
        control = {i for i, (s, v) in enumerate(current) if v == "control"}
        if previous is not None:
            prev_treated, prev_variant = previous
            assert prev_treated <= treated  # raising the stage only adds units
            assert all(current[i][1] == prev_variant[i] for i in prev_treated)  # variant never changes
            assert control == control_at_first  # the control group is stable
        else:
            control_at_first = control
        previous = (treated, {i: current[i][1] for i in treated})


def test_observed_split_matches_expected_split_at_each_stage():
    for stage in (0.01, 0.25, 0.5):
        counts = Counter(v or "none" for _, v in arms(stage))
        split = expected_split(VARIANTS, stage)
        observed = [counts[k] for k in split] + [counts["none"]]
        expected = [split[k] * len(IDS) for k in split] + [(1 - sum(split.values())) * len(IDS)]
        keep = [i for i, e in enumerate(expected) if e > 0]
        assert stats.chisquare([observed[i] for i in keep], [expected[i] for i in keep]).pvalue > 0.001


def test_expected_split_at_one_percent_is_not_fifty_fifty():
    split = expected_split({"control": 50, "treatment": 50}, 0.01)
    assert split == pytest.approx({"control": 0.5, "treatment": 0.01})
    assert expected_split({"control": 50, "treatment": 50}, None) == pytest.approx({"control": 0.5, "treatment": 0.5})


def test_rollback_marks_previously_exposed_units():
    at_25 = arms(0.25)
    back = arms(0.10, max_stage_reached=0.25)
    for (s25, v25), (s10, v10) in zip(at_25, back, strict=True):
        if s25 == Status.ASSIGNED and v25 != "control" and s10 != Status.ASSIGNED:
            assert s10 == Status.ROLLED_BACK and v10 is None
    statuses = Counter(s for s, _ in back)
    assert statuses[Status.ROLLED_BACK] > 0
    aborted = arms(0.25, max_stage_reached=0.25, rollout_status="ABORTED")
    assert not any(v not in (None, "control") for _, v in aborted)


def test_layers_are_mutually_exclusive():
    a = ExperimentConfig("a", "sa", (("c", 1), ("t", 1)), layer="pricing", layer_range=(0.0, 0.4))
    b = ExperimentConfig("b", "sb", (("c", 1), ("t", 1)), layer="pricing", layer_range=(0.4, 1.0))
    decisions = decide_batch(AssignmentConfig(experiments=(a, b)), IDS[:20_000])
    both = sum(1 for d in decisions if all(e.status == Status.ASSIGNED for e in d.experiments))
    either = sum(1 for d in decisions if any(e.status == Status.ASSIGNED for e in d.experiments))
    assert both == 0 and either == 20_000
    share_a = sum(1 for d in decisions if d.experiments[0].status == Status.ASSIGNED) / 20_000
    assert abs(share_a - 0.4) < 0.02


def test_holdout_members_never_get_treatment():
    cohort = HoldoutCohortConfig("global", "global-salt", 0.10)
    exp = experiment(0.5, holdout_cohort_id="own")
    own = HoldoutCohortConfig("own", "own-salt", 0.05, scope="EXPERIMENT", experiment_id="exp-1")
    decisions = decide_batch(AssignmentConfig(cohorts=(cohort, own), experiments=(exp,)), IDS[:20_000])
    for d in decisions:
        if d.in_holdout:
            assert d.experiments[0].status == Status.HOLDOUT and d.experiments[0].variant is None
    held = sum(d.in_holdout for d in decisions) / 20_000
    assert abs(held - (1 - 0.9 * 0.95)) < 0.01


def test_targeting_regions_and_pause():
    rules = compile_rules([{"attribute": "platform", "op": "in", "value": ["ios"]}])
    exp = experiment(0.5, eligibility=rules, restricted_regions=("NL",))
    cfg = AssignmentConfig(experiments=(exp,))
    assert decide(cfg, "u1", {"platform": "web"}).experiments[0].status == Status.NOT_ELIGIBLE
    assert decide(cfg, "u1", {}).experiments[0].status == Status.NOT_ELIGIBLE
    assert decide(cfg, "u1", {"platform": "ios", "region": "NL"}).experiments[0].status == Status.REGION_RESTRICTED
    paused = AssignmentConfig(experiments=(experiment(0.5, paused=True),))
    assert decide(paused, "u1").experiments[0].status == Status.PAUSED


def test_cluster_override_puts_a_household_on_one_side():
    cohort = HoldoutCohortConfig("h", "hs", 0.5, scope="EXPERIMENT")
    exp = experiment(0.5, holdout_cohort_id="h")
    members = [f"member-{i}" for i in range(200)]
    overrides = {"h": {m: "wallet-7" for m in members}}
    decisions = decide_batch(AssignmentConfig(cohorts=(cohort,), experiments=(exp,)), members,
                             randomisation_overrides=overrides)
    assert len({(d.in_holdout, d.experiments[0].status, d.experiments[0].variant) for d in decisions}) == 1
