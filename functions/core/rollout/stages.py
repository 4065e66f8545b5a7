"""The stage model: a stage is the fraction of eligible, non-holdout units exposed to treatment.

The assignment layout puts treatment at buckets [0, stage) and control at [1 - w_control, 1),
so a stage can never exceed 1 - w_control (the treatment arms' designed share) and raising the
stage only ever adds units to treatment.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from functions.core.errors import ErrorCode, Unprocessable

DEFAULT_STAGES: tuple[float, ...] = (0.01, 0.05, 0.10, 0.25, 0.50)
MAX_STAGES = 20
_EPS = 1e-12


def control_share(weights: Sequence[tuple[str, float]] | Mapping[str, float]) -> float:
    """Share of the control arm (the first variant) in the design."""
    pairs = list(weights.items()) if isinstance(weights, Mapping) else list(weights)
    total = sum(w for _, w in pairs)
    if not pairs or total <= 0:
        raise Unprocessable("variants need positive weights", code=ErrorCode.INVALID_VARIANTS)
    return pairs[0][1] / total


def _reject(reason: str, stages: Sequence[float], **details: object) -> Unprocessable:
    return Unprocessable(f"invalid stages: {reason}", code=ErrorCode.INVALID_STAGES,
                         details={"reason": reason, "stages": list(stages), **details})


def validate_stages(stages: Sequence[float], control: float) -> tuple[float, ...]:
    """Non-empty, strictly increasing, each in (0, 1], final <= 1 - control share; else 422."""
    values = list(stages)
    if not values:
        raise _reject("the stage list is empty", values)
    if len(values) > MAX_STAGES:
        raise _reject(f"at most {MAX_STAGES} stages", values)
    for i, s in enumerate(values):
        if isinstance(s, bool) or not isinstance(s, int | float) or not math.isfinite(s):
            raise _reject(f"stage {i} is not a finite number", values, index=i)
        if not 0.0 < s <= 1.0:
            raise _reject(f"stage {i} ({s}) is outside (0, 1]", values, index=i)
        if i and s <= values[i - 1]:
            raise _reject(f"stages must be strictly increasing: stage {i} ({s}) <= stage {i - 1} "
                          f"({values[i - 1]})", values, index=i)
    capacity = 1.0 - control
    if values[-1] > capacity + _EPS:
        raise _reject(f"final stage {values[-1]} exceeds 1 - control share = {capacity:.6g}", values,
                      capacity=capacity)
    return tuple(float(s) for s in values)


def exposure_status(b: float, stage: float, max_stage_reached: float, control: float) -> str:
    """Where bucket b falls (mirrors the assignment core; used for docs and projections)."""
    if b >= 1.0 - control:
        return "CONTROL"
    if b < stage:
        return "TREATMENT"
    if b < max_stage_reached:
        return "ROLLED_BACK"
    return "NOT_EXPOSED"
