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

import numpy as np

from functions.core.assignment.eligibility import ALWAYS, Rules
from functions.core.assignment.hashing import bucket, bucket_array


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


STATUS_ORDER = tuple(Status)
_CODE = {status: i for i, status in enumerate(STATUS_ORDER)}


@dataclass(frozen=True)
class BatchColumns:
    """A batch decision as columns (numpy arrays), the fast form: one entry per unit."""

    unit_ids: Sequence[str]
    cohort_ids: tuple[str, ...]
    cohort_eligible: np.ndarray  # bool [cohorts, units]
    cohort_member: np.ndarray  # bool [cohorts, units]: eligible and inside the holdout share
    experiment_ids: tuple[str, ...]
    status: np.ndarray  # int8 [experiments, units], index into STATUS_ORDER
    variant: np.ndarray  # int16 [experiments, units], index into the experiment's variants, -1 = none
    variant_keys: tuple[tuple[str, ...], ...]

    def to_units(self) -> list[UnitDecision]:
        out = []
        cohorts, exps, keys = self.cohort_ids, self.experiment_ids, self.variant_keys
        member, eligible = self.cohort_member.T.tolist(), self.cohort_eligible.T.tolist()
        status, variant = self.status.T.tolist(), self.variant.T.tolist()
        for i, unit in enumerate(self.unit_ids):
            held = tuple(sorted(c for c, m in zip(cohorts, member[i], strict=True) if m))
            elig = {c: m for c, e, m in zip(cohorts, eligible[i], member[i], strict=True) if e}
            decisions = tuple(
                ExperimentDecision(
                    eid,
                    STATUS_ORDER[status[i][j]],
                    keys[j][variant[i][j]] if variant[i][j] >= 0 else None,
                    STATUS_ORDER[status[i][j]] == Status.ASSIGNED,
                )
                for j, eid in enumerate(exps)
            )
            out.append(UnitDecision(unit, held, elig, decisions))
        return out


def _rule_mask(rules: Rules, attrs: Sequence[Mapping[str, Any]], n: int) -> np.ndarray:
    if not rules.rules:
        return np.ones(n, dtype=bool)
    return np.fromiter((rules.matches(a) for a in attrs), dtype=bool, count=n)


def _overridden(
    base: np.ndarray, unit_ids: Sequence[str], rids: Mapping[str, str], salt: str, version: int
) -> np.ndarray:
    if not rids:
        return base
    out = base.copy()
    for i, unit in enumerate(unit_ids):
        rid = rids.get(unit)
        if rid:
            out[i] = bucket(rid, salt, version)
    return out


def decide_columns(
    config: AssignmentConfig,
    unit_ids: Sequence[str],
    attributes: Sequence[Mapping[str, Any] | None] | None = None,
    randomisation_overrides: Mapping[str, Mapping[str, str]] | None = None,
) -> BatchColumns:
    """Decide for many units at once, vectorised over units. `randomisation_overrides` maps
    cohort id -> {unit id: randomisation id} (wallet/household cluster ids under the CLUSTER
    policy); an experiment randomises by the same id as its holdout cohort, so a cluster lands
    on one side together."""
    n = len(unit_ids)
    overrides = randomisation_overrides or {}
    attrs = [a or {} for a in attributes] if attributes is not None else [{}] * n
    cohorts = config.cohorts
    eligible = np.zeros((len(cohorts), n), dtype=bool)
    member = np.zeros((len(cohorts), n), dtype=bool)
    global_held = np.zeros(n, dtype=bool)
    held_by: dict[str, np.ndarray] = {}
    team_held: dict[str, np.ndarray] = {}
    for k, cohort in enumerate(cohorts):
        eligible[k] = _rule_mask(cohort.eligibility, attrs, n)
        b = _overridden(bucket_array(unit_ids, cohort.salt, cohort.hash_version), unit_ids,
                        overrides.get(cohort.cohort_id, {}), cohort.salt, cohort.hash_version)
        member[k] = eligible[k] & (b < cohort.share)
        held_by[cohort.cohort_id] = member[k]
        if cohort.scope == "GLOBAL":
            global_held |= member[k]
        elif cohort.scope == "TEAM" and cohort.team_id:
            team_held[cohort.team_id] = team_held.get(cohort.team_id, np.zeros(n, dtype=bool)) | member[k]
    regions = None
    status = np.zeros((len(config.experiments), n), dtype=np.int8)
    variant = np.full((len(config.experiments), n), -1, dtype=np.int16)
    for j, exp in enumerate(config.experiments):
        rids = overrides.get(exp.holdout_cohort_id or "", {})
        code = np.full(n, _CODE[Status.NOT_EXPOSED], dtype=np.int8)
        undecided = np.ones(n, dtype=bool)

        def settle(mask: np.ndarray, st: Status, code=code, undecided=undecided) -> np.ndarray:
            hit = undecided & mask
            code[hit] = _CODE[st]
            undecided &= ~hit
            return hit

        settle(~_rule_mask(exp.eligibility, attrs, n), Status.NOT_ELIGIBLE)
        if exp.restricted_regions:
            if regions is None:
                regions = np.array([a.get("region") for a in attrs], dtype=object)
            settle(np.isin(regions, list(exp.restricted_regions)), Status.REGION_RESTRICTED)
        holdout = global_held.copy()
        if exp.holdout_cohort_id in held_by:
            holdout |= held_by[exp.holdout_cohort_id]
        if exp.team_id and exp.team_id in team_held:
            holdout |= team_held[exp.team_id]
        settle(holdout, Status.HOLDOUT)
        if exp.layer is not None:
            salt = f"layer:{exp.layer}"
            lb = _overridden(bucket_array(unit_ids, salt, exp.hash_version), unit_ids, rids, salt, exp.hash_version)
            lo, hi = exp.layer_range
            settle(~((lb >= lo) & (lb < hi)), Status.LAYER_EXCLUDED)
        if exp.paused:
            settle(np.ones(n, dtype=bool), Status.PAUSED)
        b = _overridden(bucket_array(unit_ids, exp.salt, exp.hash_version), unit_ids, rids, exp.salt,
                        exp.hash_version)
        in_control = settle(b >= 1.0 - exp.control_share, Status.ASSIGNED)
        variant[j][in_control] = 0
        treated = settle(b < exp.stage, Status.ASSIGNED)
        if treated.any():
            idx = np.flatnonzero(treated)
            if len(exp.variants) == 2:
                variant[j][idx] = 1
            else:
                vsalt = f"{exp.salt}:variant"
                picked_ids = [unit_ids[i] for i in idx.tolist()]
                vb = _overridden(bucket_array(picked_ids, vsalt, exp.hash_version), picked_ids, rids, vsalt,
                                 exp.hash_version)
                weights = np.array([w for _, w in exp.variants[1:]], dtype=float)
                edges = np.cumsum(weights / weights.sum())
                variant[j][idx] = 1 + np.minimum(np.searchsorted(edges, vb, side="right"), len(weights) - 1)
        if exp.max_stage_reached is not None:
            settle(b < exp.max_stage_reached, Status.ROLLED_BACK)
        status[j] = code
    return BatchColumns(
        unit_ids=unit_ids,
        cohort_ids=tuple(c.cohort_id for c in cohorts),
        cohort_eligible=eligible,
        cohort_member=member,
        experiment_ids=tuple(e.experiment_id for e in config.experiments),
        status=status,
        variant=variant,
        variant_keys=tuple(tuple(k for k, _ in e.variants) for e in config.experiments),
    )


def decide_batch(
    config: AssignmentConfig,
    unit_ids: Sequence[str],
    attributes: Sequence[Mapping[str, Any] | None] | None = None,
    randomisation_overrides: Mapping[str, Mapping[str, str]] | None = None,
) -> list[UnitDecision]:
    """Per-unit objects (what the API returns); see decide_columns for the semantics."""
    return decide_columns(config, unit_ids, attributes, randomisation_overrides).to_units()


def decide(config: AssignmentConfig, unit_id: str, attributes: Mapping[str, Any] | None = None,
           randomisation_overrides: Mapping[str, Mapping[str, str]] | None = None) -> UnitDecision:
    return decide_batch(config, [unit_id], [attributes], randomisation_overrides)[0]
