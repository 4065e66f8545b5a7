"""The assignment decision: holdouts, experiments, layers and staged rollout, for a batch.

Bucket layout of one experiment (b = bucket(unit, experiment salt)):

    0 ......... stage ........... max_stage_reached ...... 1 - w_control ........ 1
    | treatment |   ROLLED_BACK   |      NOT_EXPOSED       |       control        |

- control iff b >= 1 - w_control: fixed from the start, so the control group never changes
  across stages;
- treatment iff b < stage: raising the stage only adds units to treatment (monotone);
- which treatment comes from a second, independent hash weighted among the treatments, so a
  unit's variant never changes when the stage moves;
- after a rollback or abort, units with stage <= b < max_stage_reached were exposed once and
  are ROLLED_BACK: they get the control experience and analysis can exclude them.
The stage is a fraction of eligible, non-holdout units exposed to treatment, at most
1 - w_control. Experiments sharing a mutual-exclusion layer own disjoint ranges of that layer's
own bucket, so they never share a unit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from functions.core.assignment.eligibility import ALWAYS, Rules
from functions.core.assignment.hashing import bucket, buckets


class Status(StrEnum):
    ASSIGNED = "ASSIGNED"
    HOLDOUT = "HOLDOUT"
    NOT_ELIGIBLE = "NOT_ELIGIBLE"
    LAYER_EXCLUDED = "LAYER_EXCLUDED"
    NOT_EXPOSED = "NOT_EXPOSED"
    ROLLED_BACK = "ROLLED_BACK"
    REGION_RESTRICTED = "REGION_RESTRICTED"
    PAUSED = "PAUSED"


@dataclass(frozen=True)
class HoldoutCohortConfig:
    cohort_id: str
    salt: str
    share: float  # fraction of eligible units held out, 0..1
    hash_version: int = 1
    eligibility: Rules = ALWAYS
    scope: str = "GLOBAL"  # GLOBAL: no experiment reaches a member; EXPERIMENT / TEAM: only its own
    experiment_id: str | None = None
    team_id: str | None = None


@dataclass(frozen=True)
class ExperimentConfig:
    experiment_id: str
    salt: str
    variants: tuple[tuple[str, float], ...]  # first is control
    hash_version: int = 1
    eligibility: Rules = ALWAYS
    holdout_cohort_id: str | None = None
    layer: str | None = None
    layer_range: tuple[float, float] = (0.0, 1.0)
    team_id: str | None = None
    restricted_regions: tuple[str, ...] = ()
    rollout_stage: float | None = None  # None: full design (1 - control share)
    rollout_status: str = "ACTIVE"  # ACTIVE | PAUSED | ABORTED
    max_stage_reached: float | None = None
    paused: bool = False

    @property
    def control(self) -> str:
        return self.variants[0][0]

    @property
    def control_share(self) -> float:
        total = sum(w for _, w in self.variants)
        return self.variants[0][1] / total if total > 0 else 1.0

    @property
    def stage(self) -> float:
        capacity = 1.0 - self.control_share
        if self.rollout_status == "ABORTED":
            return 0.0
        if self.rollout_stage is None:
            return capacity
        return max(0.0, min(self.rollout_stage, capacity))


@dataclass(frozen=True)
class AssignmentConfig:
    cohorts: tuple[HoldoutCohortConfig, ...] = ()
    experiments: tuple[ExperimentConfig, ...] = ()


@dataclass(frozen=True)
class ExperimentDecision:
    experiment_id: str
    status: Status
    variant: str | None  # only when ASSIGNED; otherwise the app shows its default (control) experience
    exposed: bool  # counted in the experiment's analysis

    def to_dict(self) -> dict[str, Any]:
        return {"experimentId": self.experiment_id, "status": str(self.status), "variant": self.variant,
                "exposed": self.exposed}


@dataclass(frozen=True)
class UnitDecision:
    unit_id: str
    holdout_cohorts: tuple[str, ...]
    eligible_cohorts: dict[str, bool]
    experiments: tuple[ExperimentDecision, ...] = field(default_factory=tuple)

    @property
    def in_holdout(self) -> bool:
        return bool(self.holdout_cohorts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "unitId": self.unit_id,
            "inHoldout": self.in_holdout,
            "holdoutCohorts": list(self.holdout_cohorts),
            "experiments": [e.to_dict() for e in self.experiments],
        }


def pick_weighted(u: float, keys_weights: Sequence[tuple[str, float]]) -> str:
    total = sum(w for _, w in keys_weights)
    edge = 0.0
    for key, weight in keys_weights:
        edge += weight / total
        if u < edge:
            return key
    return keys_weights[-1][0]


def expected_split(weights: Sequence[tuple[str, float]] | Mapping[str, float], stage: float | None) -> dict[str, float]:
    """Expected share of eligible, non-holdout units per arm at a rollout stage (the rest is
    NOT_EXPOSED). SRM tests compare observed arm counts with these shares, so a 1% stage is
    expected to look like 1:50, not 50:50."""
    pairs = list(weights.items()) if isinstance(weights, Mapping) else list(weights)
    total = sum(w for _, w in pairs)
    control_share = pairs[0][1] / total
    capacity = 1.0 - control_share
    exposed = capacity if stage is None else max(0.0, min(stage, capacity))
    treat_total = sum(w for _, w in pairs[1:])
    split = {pairs[0][0]: control_share}
    for key, weight in pairs[1:]:
        split[key] = exposed * weight / treat_total if treat_total > 0 else 0.0
    return split


def _decide_experiment(
    exp: ExperimentConfig,
    rid: str,
    b: float,
    attributes: Mapping[str, Any],
    held_by: set[str],
    global_holdout: bool,
    team_holdouts: set[str],
) -> ExperimentDecision:
    eid = exp.experiment_id
    if not exp.eligibility.matches(attributes):
        return ExperimentDecision(eid, Status.NOT_ELIGIBLE, None, False)
    if exp.restricted_regions and attributes.get("region") in exp.restricted_regions:
        return ExperimentDecision(eid, Status.REGION_RESTRICTED, None, False)
    if global_holdout or (exp.holdout_cohort_id in held_by) or (exp.team_id and exp.team_id in team_holdouts):
        return ExperimentDecision(eid, Status.HOLDOUT, None, False)
    if exp.layer is not None:
        lo, hi = exp.layer_range
        if not lo <= bucket(rid, f"layer:{exp.layer}", exp.hash_version) < hi:
            return ExperimentDecision(eid, Status.LAYER_EXCLUDED, None, False)
    if exp.paused:
        return ExperimentDecision(eid, Status.PAUSED, None, False)
    if b >= 1.0 - exp.control_share:
        return ExperimentDecision(eid, Status.ASSIGNED, exp.control, True)
    stage = exp.stage
    if b < stage:
        variant = pick_weighted(bucket(rid, f"{exp.salt}:variant", exp.hash_version), exp.variants[1:])
        return ExperimentDecision(eid, Status.ASSIGNED, variant, True)
    if exp.max_stage_reached is not None and b < exp.max_stage_reached:
        return ExperimentDecision(eid, Status.ROLLED_BACK, None, False)
    return ExperimentDecision(eid, Status.NOT_EXPOSED, None, False)


def decide_batch(
    config: AssignmentConfig,
    unit_ids: Sequence[str],
    attributes: Sequence[Mapping[str, Any] | None] | None = None,
    randomisation_overrides: Mapping[str, Mapping[str, str]] | None = None,
) -> list[UnitDecision]:
    """Decide for many units at once. `randomisation_overrides` maps cohort id -> {unit id:
    randomisation id} (wallet/household cluster ids under the CLUSTER policy); an experiment
    randomises by the same id as its holdout cohort so a cluster lands on one side together."""
    overrides = randomisation_overrides or {}
    attrs_list = list(attributes) if attributes is not None else [None] * len(unit_ids)
    has_overrides = any(overrides.values())
    # Vectorised hashing where no override applies (the common case).
    cohort_b = {c.cohort_id: buckets(unit_ids, c.salt, c.hash_version) for c in config.cohorts}
    exp_b = {e.experiment_id: buckets(unit_ids, e.salt, e.hash_version) for e in config.experiments}
    out: list[UnitDecision] = []
    for i, unit in enumerate(unit_ids):
        attrs = attrs_list[i] or {}
        held_by: set[str] = set()
        eligible: dict[str, bool] = {}
        team_holdouts: set[str] = set()
        global_holdout = False
        for cohort in config.cohorts:
            if not cohort.eligibility.matches(attrs):
                continue
            rid = overrides.get(cohort.cohort_id, {}).get(unit) if has_overrides else None
            b = bucket(rid, cohort.salt, cohort.hash_version) if rid else cohort_b[cohort.cohort_id][i]
            inside = b < cohort.share
            eligible[cohort.cohort_id] = inside
            if inside:
                held_by.add(cohort.cohort_id)
                if cohort.scope == "GLOBAL":
                    global_holdout = True
                elif cohort.scope == "TEAM" and cohort.team_id:
                    team_holdouts.add(cohort.team_id)
        decisions = []
        for exp in config.experiments:
            rid = unit
            if has_overrides and exp.holdout_cohort_id:
                rid = overrides.get(exp.holdout_cohort_id, {}).get(unit) or unit
            b = exp_b[exp.experiment_id][i] if rid == unit else bucket(rid, exp.salt, exp.hash_version)
            decisions.append(_decide_experiment(exp, rid, b, attrs, held_by, global_holdout, team_holdouts))
        out.append(UnitDecision(unit, tuple(sorted(held_by)), eligible, tuple(decisions)))
    return out


def decide(config: AssignmentConfig, unit_id: str, attributes: Mapping[str, Any] | None = None,
           randomisation_overrides: Mapping[str, Mapping[str, str]] | None = None) -> UnitDecision:
    return decide_batch(config, [unit_id], [attributes], randomisation_overrides)[0]
