"""When will the rollout reach its final stage at the traffic we see now?

Traffic is estimated from first exposures since the current stage began (eligible units per
second, recovered by dividing by the stage's expected exposed share), and each later stage is
assumed to last as long as its slowest requirement that depends on time or traffic. Manual
approvals, guardrails and SRM are assumed to pass: this is a best case, and is labelled so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from functions.core.rollout.requirements import StageRequirements


def eligible_rate(since_entry: Mapping[str, int], split: Mapping[str, float], elapsed_seconds: float) -> float | None:
    """Eligible, non-holdout units first seen per second, or None when there is nothing to go on."""
    exposed_share = sum(split.values())
    seen = sum(since_entry.get(a, 0) for a in split)
    if elapsed_seconds <= 0 or exposed_share <= 0 or seen <= 0:
        return None
    return seen / elapsed_seconds / exposed_share


def project_final(stages: Sequence[float], requirements: Sequence[StageRequirements], index: int,
                  now: datetime, entered_at: datetime, exposures: Mapping[str, int],
                  split_at: Callable[[float], Mapping[str, float]], rate: float | None) -> datetime | None:
    if index >= len(stages) - 1:
        return entered_at
    if rate is None or rate <= 0:
        return None
    counts = {a: float(n) for a, n in exposures.items()}
    t = now
    for j in range(index, len(stages) - 1):
        req, split = requirements[j], split_at(stages[j])
        min_time = req.min_time_seconds - ((now - entered_at).total_seconds() if j == index else 0.0)
        need = 0.0
        for arm, share in split.items():
            missing = req.min_units_per_arm - counts.get(arm, 0.0)
            if missing > 0:
                need = max(need, missing / (rate * share) if share > 0 else math.inf)
        duration = max(0.0, min_time, need)
        if not math.isfinite(duration):
            return None
        for arm, share in split.items():
            counts[arm] = counts.get(arm, 0.0) + rate * share * duration
        t += timedelta(seconds=duration)
    return t
