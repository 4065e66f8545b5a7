"""Always-valid inference for monitoring under continuous peeking, and guardrail verdicts.

The asymptotic confidence sequence of Waudby-Smith et al. (2023, eq. 9), with the tuning of
GrowthBook's gbstats (rho from the tuning parameter, default 5000; eq. 161): the interval may be
looked at after every sweep and still covers the true effect with probability >= 1 - alpha
simultaneously over all looks. Guardrails are one-sided non-inferiority checks: a breach needs
the whole bound beyond the margin on the harmful side, so a wobbling point estimate never kills.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from functions.core.stats.inference import finite
from functions.core.stats.sufficient import MomentStats

DEFAULT_TUNING = 5000.0


def rho(alpha: float, tuning: float = DEFAULT_TUNING) -> float:
    return math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning)


def halfwidth(variance_of_estimate: float, n_total: float, alpha: float = 0.05,
              tuning: float = DEFAULT_TUNING) -> float:
    """Half-width of the confidence sequence for an estimate with the given variance after
    n_total units (variance * n_total is the per-unit variance scale)."""
    r = rho(alpha, tuning)
    s2 = variance_of_estimate * n_total
    return math.sqrt(s2) * math.sqrt(2 * (n_total * r**2 + 1) * math.log(math.sqrt(n_total * r**2 + 1) / alpha)
                                     / (n_total * r) ** 2)


def effect_variance(control: MomentStats, treatment: MomentStats, relative: bool) -> float:
    va, vb = control.var, treatment.var
    ma, mb = control.mean, treatment.mean
    if relative:
        return vb / (ma**2 * treatment.n) + va * mb**2 / (ma**4 * control.n)
    return vb / treatment.n + va / control.n


def confidence_sequence(control: MomentStats, treatment: MomentStats, relative: bool = True,
                        alpha: float = 0.05, tuning: float = DEFAULT_TUNING) -> tuple[float, float, float] | None:
    """(estimate, lower, upper) or None when the arms cannot support one."""
    if control.n < 2 or treatment.n < 2 or (relative and control.mean == 0):
        return None
    estimate = (treatment.mean - control.mean) / (control.mean if relative else 1.0)
    width = halfwidth(effect_variance(control, treatment, relative), control.n + treatment.n, alpha, tuning)
    return estimate, estimate - width, estimate + width


OK, BREACHED, INSUFFICIENT_DATA = "OK", "BREACHED", "INSUFFICIENT_DATA"


@dataclass(frozen=True)
class GuardrailVerdict:
    status: str
    kind: str  # RELATIVE_DEGRADATION | ABSOLUTE_MAX | ABSOLUTE_MIN
    observed: float | None
    bound: float | None
    limit: float | None
    detail: str

    @property
    def breached(self) -> bool:
        return self.status == BREACHED

    def to_dict(self) -> dict[str, Any]:
        return finite({"status": self.status, "kind": self.kind, "observed": self.observed, "bound": self.bound,
                       "limit": self.limit, "detail": self.detail})


def relative_guardrail(control: MomentStats, treatment: MomentStats, harmful_direction: str, max_degradation: float,
                       alpha: float = 0.05, tuning: float = DEFAULT_TUNING, min_units: int = 30) -> GuardrailVerdict:
    """Breached when the always-valid bound shows harm beyond `max_degradation` (relative).
    harmful_direction: "INCREASE" (e.g. refunds) or "DECREASE" (e.g. revenue)."""
    if min(control.n, treatment.n) < min_units:
        return GuardrailVerdict(INSUFFICIENT_DATA, "RELATIVE_DEGRADATION", None, None, max_degradation,
                                f"needs {min_units} units per arm")
    cs = confidence_sequence(control, treatment, relative=True, alpha=alpha, tuning=tuning)
    if cs is None:
        return GuardrailVerdict(INSUFFICIENT_DATA, "RELATIVE_DEGRADATION", None, None, max_degradation,
                                "control mean is zero or arms too small")
    estimate, lower, upper = cs
    if harmful_direction == "INCREASE":
        breached, bound = lower > max_degradation, lower
    else:
        breached, bound = upper < -max_degradation, upper
    detail = (f"relative effect {estimate:+.4f}, always-valid bound {bound:+.4f} vs margin "
              f"{'+' if harmful_direction == 'INCREASE' else '-'}{max_degradation:.4f}")
    return GuardrailVerdict(BREACHED if breached else OK, "RELATIVE_DEGRADATION", estimate, bound, max_degradation,
                            detail)


def absolute_guardrail(treatment: MomentStats, maximum: float | None = None, minimum: float | None = None,
                       alpha: float = 0.05, tuning: float = DEFAULT_TUNING, min_units: int = 30) -> GuardrailVerdict:
    """Breached when the always-valid bound of the treatment's own level crosses the threshold
    (e.g. refund rate max 0.08: breach when even the lower bound exceeds 0.08)."""
    kind = "ABSOLUTE_MAX" if maximum is not None else "ABSOLUTE_MIN"
    limit = maximum if maximum is not None else minimum
    if treatment.n < max(min_units, 2):
        return GuardrailVerdict(INSUFFICIENT_DATA, kind, None, None, limit, f"needs {min_units} treated units")
    width = halfwidth(treatment.var / treatment.n, treatment.n, alpha, tuning)
    mean = treatment.mean
    if maximum is not None:
        bound = mean - width
        breached = bound > maximum
    else:
        bound = mean + width
        breached = bound < float(minimum)
    return GuardrailVerdict(BREACHED if breached else OK, kind, mean, bound, limit,
                            f"treatment level {mean:.4f}, always-valid bound {bound:.4f} vs limit {limit}")
