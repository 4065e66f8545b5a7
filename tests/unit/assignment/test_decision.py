"""The batch decision: monotone, stable rollout exposure; layers; holdouts; expected split."""

from __future__ import annotations

from collections import Counter

import pytest
from scipy import stats

from functions.core.assignment.decision import (
    STATUS_ORDER,
    AssignmentConfig,
    ExperimentConfig,
    HoldoutCohortConfig,
    Status,
    decide,
    decide_batch,
    decide_columns,
    expected_split,
)
from functions.core.assignment.eligibility import compile_rules

STAGES = (0.01, 0.05, 0.10, 0.25, 0.50)
IDS = [f"unit-{i}" for i in range(100_000)]
VARIANTS = (("control", 50.0), ("t1", 25.0), ("t2", 25.0))


def experiment(stage, **kw):
    return ExperimentConfig("exp-1", "salt-exp-1", VARIANTS, rollout_stage=stage, **kw)


def arms(stage, ids=IDS, **kw):
    """(status, variant) per unit, read from the columnar decision (the per-unit objects are the
    same decision, checked below on a sample, but building 100k of them is slow)."""
    columns = decide_columns(AssignmentConfig(experiments=(experiment(stage, **kw),)), ids)
    keys = columns.variant_keys[0]
    return [(STATUS_ORDER[s], keys[v] if v >= 0 else None)
            for s, v in zip(columns.status[0].tolist(), columns.variant[0].tolist(), strict=True)]


@pytest.mark.parametrize("stage", [0.01, 0.25])
def test_columns_and_unit_objects_are_the_same_decision(stage):
    sample = IDS[:5_000]
    units = decide_batch(AssignmentConfig(experiments=(experiment(stage, max_stage_reached=0.5),)), sample)
    assert [(d.experiments[0].status, d.experiments[0].variant) for d in units] == arms(
        stage, sample, max_stage_reached=0.5)


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


def test_global_team_and_experiment_holdouts_reach_only_their_scope():
    team = HoldoutCohortConfig("team", "team-salt", 0.2, scope="TEAM", team_id="pricing")
    own = HoldoutCohortConfig("own", "own-salt", 0.2, scope="EXPERIMENT", experiment_id="exp-own")
    glob = HoldoutCohortConfig("global", "global-salt", 0.05)
    pricing = ExperimentConfig("exp-pricing", "s1", (("c", 1), ("t", 1)), team_id="pricing", holdout_cohort_id="global")
    growth = ExperimentConfig("exp-growth", "s2", (("c", 1), ("t", 1)), team_id="growth", holdout_cohort_id="global")
    mine = ExperimentConfig("exp-own", "s3", (("c", 1), ("t", 1)), team_id="growth", holdout_cohort_id="own")
    cfg = AssignmentConfig(cohorts=(glob, own, team), experiments=(pricing, growth, mine))
    decisions = decide_batch(cfg, IDS[:20_000])
    for d in decisions:
        status = {e.experiment_id: e.status for e in d.experiments}
        held = set(d.holdout_cohorts)
        assert (status["exp-pricing"] == Status.HOLDOUT) == bool(held & {"global", "team"})
        assert (status["exp-growth"] == Status.HOLDOUT) == ("global" in held)  # another team's holdout: no effect
        assert (status["exp-own"] == Status.HOLDOUT) == bool(held & {"global", "own"})
    team_only = sum(1 for d in decisions if set(d.holdout_cohorts) == {"team"}) / 20_000
    assert abs(team_only - 0.2 * 0.8 * 0.95) < 0.01


def test_cohort_eligibility_by_region_platform_and_account_age():
    rules = compile_rules([{"attribute": "region", "op": "in", "value": ["DE", "FR"]},
                           {"attribute": "platform", "op": "eq", "value": "ios"},
                           {"attribute": "accountAgeDays", "op": "gte", "value": 30}])
    cohort = HoldoutCohortConfig("h", "hs", 1.0, eligibility=rules)  # 100%: every eligible unit is held out
    cfg = AssignmentConfig(cohorts=(cohort,))
    base = {"region": "DE", "platform": "ios", "accountAgeDays": 45}
    assert decide(cfg, "u", base).in_holdout
    for change in ({"region": "US"}, {"platform": "android"}, {"accountAgeDays": 3}, {"accountAgeDays": "45"}):
        assert not decide(cfg, "u", {**base, **change}).in_holdout, change
    assert not decide(cfg, "u", {"region": "DE", "platform": "ios"}).in_holdout  # unknown age is never eligible
    decision = decide(cfg, "u", {**base, "region": "US"})
    assert decision.eligible_cohorts == {}  # ineligible units are not counted in the cohort's size either
