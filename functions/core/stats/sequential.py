"""Always-valid inference for monitoring under continuous peeking, and guardrail verdicts.

The asymptotic confidence sequence of Waudby-Smith et al. (2023, eq. 9), with the tuning of
GrowthBook's gbstats (rho from the tuning parameter, default 5000; eq. 161): the interval may be
looked at after every sweep and still covers the true effect with probability >= 1 - alpha
simultaneously over all looks.

Guardrails are one-sided non-inferiority tests run on that sequence. An asymptotic sequence is
only as good as its variance estimate, and on sparse, right-skewed data (revenue with few payers,
rare conversions) the plug-in variance of an arm is small exactly when its mean is low by chance,
so a "fall is the harm" check breached far too often. Three changes make it calibrated
(docs/calibration.md has the numbers):

1. Test the linear contrast, not the ratio (Fieller 1954): a relative margin m is the null
   mu_T = k * mu_C with k = 1 - m (fall) or 1 + m (rise), tested as D = mean_T - k * mean_C, so
   no division by a noisy control mean and a treatment with zero events still has a finite
   estimate. Absolute limits test D = mean_T - limit.
2. Variance under the null (the score-test idea of Farrington & Manning 1990 for
   non-inferiority): each arm's variance is floored at the pooled variance the null implies
   (arms pooled on the control's scale, mu_T = k * mu_C). An absolute limit on a 0/1 metric uses
   limit * (1 - limit); otherwise the larger of the control's and the treatment's own coefficient
   of variation at the limit. A floor only ever widens the bound, so a treatment that changes
   the variance stays covered.
3. A minimum of information before acting: at least `min_units` units per arm and, wherever a
   variance is estimated, MIN_EFFECTIVE_EVENTS effective events ((sum x)^2 / sum x^2, Kish's
   effective sample size: the event count of a 0/1 metric, fewer for heavy tails) in the control
   arm and expected in the treatment arm at the control's rate. An absolute limit on a 0/1
   metric knows its variance at the limit and needs only the units. Below the floors the
   verdict is INSUFFICIENT_DATA and says what is missing; it never breaches.

The bound math works on numpy arrays as well as floats, so bench/calibration.py runs the very
same functions over thousands of simulated sweeps at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from functions.core.stats.inference import finite
from functions.core.stats.sufficient import MomentStats

DEFAULT_TUNING = 5000.0
MIN_EFFECTIVE_EVENTS = 10.0

OK, BREACHED, INSUFFICIENT_DATA, INVALID_DATA = "OK", "BREACHED", "INSUFFICIENT_DATA", "INVALID_DATA"
INCREASE, DECREASE = "INCREASE", "DECREASE"


def rho(alpha: float, tuning: float = DEFAULT_TUNING) -> float:
    return math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning)


def halfwidth(variance_of_estimate: Any, n_total: Any, alpha: float = 0.05, tuning: float = DEFAULT_TUNING) -> Any:
    """Half-width of the confidence sequence for an estimate with the given variance after
    n_total units (variance * n_total is the per-unit variance scale). Floats or arrays."""
    r = rho(alpha, tuning)
    s2 = np.asarray(variance_of_estimate, dtype=float) * n_total
    nr2 = np.asarray(n_total, dtype=float) * r**2
    return np.sqrt(s2) * np.sqrt(2 * (nr2 + 1) * np.log(np.sqrt(nr2 + 1) / alpha) / (nr2 * nr2 / r**2))


def effect_variance(control: MomentStats, treatment: MomentStats, relative: bool) -> float:
    va, vb = control.var, treatment.var
    ma, mb = control.mean, treatment.mean
    if relative:
        return vb / (ma**2 * treatment.n) + va * mb**2 / (ma**4 * control.n)
    return vb / treatment.n + va / control.n


def _finite_stats(*arms: MomentStats) -> bool:
    return all(s.is_finite for s in arms)


def _sums(stats: MomentStats) -> tuple[float, float, float]:
    """(n, Σx, Σx²) as the array core takes them: raw sums, whatever shift the stats were kept about."""
    raw = stats.reshift()
    return raw.n, raw.sum_x, raw.sum_x2


def confidence_sequence(control: MomentStats, treatment: MomentStats, relative: bool = True,
                        alpha: float = 0.05, tuning: float = DEFAULT_TUNING) -> tuple[float, float, float] | None:
    """(estimate, lower, upper) or None when the arms cannot support one (gbstats' sequence)."""
    if not _finite_stats(control, treatment) or control.n < 2 or treatment.n < 2 or (relative and control.mean == 0):
        return None
    estimate = (treatment.mean - control.mean) / (control.mean if relative else 1.0)
    width = float(halfwidth(effect_variance(control, treatment, relative), control.n + treatment.n, alpha, tuning))
    return estimate, estimate - width, estimate + width


# ----------------------------------------------------------------------------------- array core
def _moments(n: Any, s: Any, q: Any) -> tuple[Any, Any]:
    """Mean and sample variance from (n, sum x, sum x^2); arrays welcome, n >= 2 assumed."""
    n = np.asarray(n, dtype=float)
    mean = s / n
    var = np.maximum((q - s * s / n) / np.maximum(n - 1, 1), 0.0)
    return mean, var


def _zero_one(s: Any, q: Any) -> Any:
    """Σx = Σx² (up to rounding, as sums kept about a shift come back): the mark of a 0/1 metric."""
    s, q = np.asarray(s, dtype=float), np.asarray(q, dtype=float)
    return np.abs(s - q) <= 1e-9 * np.maximum(np.abs(s), 1.0)


def effective_events(s: Any, q: Any) -> Any:
    """Kish's effective sample size (sum x)^2 / sum x^2: the event count of a 0/1 metric, fewer
    for a heavy-tailed amount (one whale among 100 payers counts as a handful)."""
    s, q = np.asarray(s, dtype=float), np.asarray(q, dtype=float)
    return np.where(q > 0, s * s / np.where(q > 0, q, 1.0), 0.0)


@dataclass(frozen=True)
class Check:
    """One guardrail's arithmetic over floats or arrays (one element per simulated sweep):
    `acts` where every floor is met, `breached` only where it acts; `units` and `events` are the
    floors' inputs (an INSUFFICIENT_DATA verdict reports the ones short)."""

    estimate: Any
    bound: Any
    breached: Any
    acts: Any
    units: dict[str, Any]
    events: dict[str, Any]
    conditions: dict[str, Any]  # other requirements by name: met (bool) per element


def _floors(units: dict[str, Any], events: dict[str, Any], min_units: int, min_events: float) -> Any:
    acts = np.asarray(True)
    for n in units.values():
        acts = acts & (np.asarray(n) >= max(min_units, 2))
    for e in events.values():
        acts = acts & (np.asarray(e) >= min_events)
    return acts


def relative_check(nc: Any, sc: Any, qc: Any, nt: Any, st: Any, qt: Any, harmful_direction: str, margin: float,
                   alpha: float = 0.05, tuning: float = DEFAULT_TUNING, min_units: int = 30,
                   min_events: float = MIN_EFFECTIVE_EVENTS) -> Check:
    """The contrast D = mean_T - k mean_C, k = 1 -/+ margin, with null-pooled variance floors.
    `bound` is on the relative scale, D's bound / mean_C + k - 1, so a breach (D's bound beyond 0)
    is the bound beyond the margin. Acts only with a positive control mean and the floors met."""
    k = 1 + margin if harmful_direction == INCREASE else 1 - margin
    nc, nt = np.asarray(nc, dtype=float), np.asarray(nt, dtype=float)
    events_c = effective_events(sc, qc)
    units = {"control": nc, "treatment": nt}
    events = {"control": events_c, "treatmentExpected": events_c * nt / np.where(nc > 0, nc, 1.0)}
    with np.errstate(divide="ignore", invalid="ignore"):
        mc, vc = _moments(nc, sc, qc)
        mt, vt = _moments(nt, st, qt)
        # Under the null T is C rescaled by k: pool both arms on the control's scale.
        pooled = ((nc - 1) * vc + (nt - 1) * vt / (k * k)) / np.maximum(nc + nt - 2, 1)
        var_d = np.maximum(vt, k * k * pooled) / nt + k * k * np.maximum(vc, pooled) / nc
        width = halfwidth(var_d, nc + nt, alpha, tuning)
        d = mt - k * mc
        bound_d = d - width if harmful_direction == INCREASE else d + width
        conditions = {"positiveControlMean": mc > 0}
        acts = _floors(units, events, min_units, min_events) & conditions["positiveControlMean"]
        beyond = bound_d > 0 if harmful_direction == INCREASE else bound_d < 0
        return Check(mt / mc - 1, bound_d / mc + k - 1, acts & beyond, acts, units, events, conditions)


def absolute_check(nt: Any, st: Any, qt: Any, limit: float, harmful_direction: str,
                   reference: tuple[Any, Any, Any] | None = None, alpha: float = 0.05,
                   tuning: float = DEFAULT_TUNING, min_units: int = 30,
                   min_events: float = MIN_EFFECTIVE_EVENTS) -> Check:
    """D = mean_T - limit with the treatment variance floored at its variance if it sat at the
    limit: limit (1 - limit) for 0/1 data, else the larger of the reference (control) arm's and
    the treatment's own coefficient of variation at the limit. Information floor: none beyond
    min_units for 0/1 data (the variance at the limit is known, as in a score test), else the
    reference's effective events scaled to the treatment's size (the treatment's own without a
    reference)."""
    nt = np.asarray(nt, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        mt, vt = _moments(nt, st, qt)
        binary = _zero_one(st, qt) & (mt >= 0) & (mt <= 1) & (0 <= limit <= 1)
        spread: np.ndarray | float
        if reference is not None:
            nr, sr, qr = (np.asarray(v, dtype=float) for v in reference)
            mr, vr = _moments(nr, sr, qr)
            binary = binary & _zero_one(sr, qr)
            spread = np.where((nr >= 2) & (mr != 0), vr / (mr * mr) * limit * limit, 0.0)
            info = effective_events(sr, qr) * nt / np.where(nr > 0, nr, 1.0)
        else:
            spread, info = 0.0, effective_events(st, qt)
        # The treatment's own spread rescaled to the limit (the scale model of the relative check):
        # a level below a minimum because large values are missing also has a shrunken spread.
        rescaled = np.where(mt > 0, vt * (limit / np.where(mt > 0, mt, 1.0)) ** 2, 0.0)
        null_var = np.where(binary, limit * (1 - limit), np.maximum(spread, rescaled))
        # A 0/1 metric's variance at the limit is known, not estimated: only min_units applies.
        events = {"treatmentExpected": np.where(binary, np.inf, info)}
        width = halfwidth(np.maximum(vt, null_var) / nt, nt, alpha, tuning)
        bound = mt - width if harmful_direction == INCREASE else mt + width
        # A fall judged on the treatment's own spread is what breached on noise: a non-0/1 metric
        # needs the reference arm's spread before a minimum can act.
        conditions = {"referenceArm": binary | (reference is not None) | (harmful_direction == INCREASE)}
        acts = _floors({"treatment": nt}, events, min_units, min_events) & conditions["referenceArm"]
        beyond = bound > limit if harmful_direction == INCREASE else bound < limit
        return Check(mt, bound, acts & beyond, acts, {"treatment": nt}, events, conditions)


# ------------------------------------------------------------------------------------ verdicts
@dataclass(frozen=True)
class GuardrailVerdict:
    status: str
    kind: str  # RELATIVE_DEGRADATION | ABSOLUTE_MAX | ABSOLUTE_MIN
    observed: float | None
    bound: float | None
    limit: float | None
    detail: str
    missing: dict[str, Any] = field(default_factory=dict)  # what an INSUFFICIENT_DATA verdict waits for

    @property
    def breached(self) -> bool:
        return self.status == BREACHED

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "kind": self.kind, "observed": self.observed,
                               "bound": self.bound, "limit": self.limit, "detail": self.detail}
        if self.missing:
            out["missing"] = self.missing
        return finite(out)


CONDITIONS = {
    "positiveControlMean": "a positive control mean (a relative change of a non-positive level is undefined)",
    "referenceArm": "the control arm's statistics (a minimum on a non-0/1 metric borrows its spread)",
}


def _shortfall(kind: str, limit: float, check: Check, min_units: int, min_events: float) -> GuardrailVerdict:
    """INSUFFICIENT_DATA naming every floor not yet met."""
    missing: dict[str, Any] = {}
    short_units = {arm: float(n) for arm, n in check.units.items() if not float(n) >= max(min_units, 2)}
    short_events = {arm: round(float(e), 2) for arm, e in check.events.items() if not float(e) >= min_events}
    if short_units:
        missing["unitsPerArm"] = {"required": max(min_units, 2), "have": short_units}
    if short_events:
        missing["effectiveEvents"] = {"required": min_events, "have": short_events}
    for name, met in check.conditions.items():
        if not bool(met):
            missing[name] = {"required": CONDITIONS[name]}
    parts = [f"{k} {v['have']} of {v['required']}" if "have" in v else f"{k}: {v['required']}"
             for k, v in missing.items()]
    return GuardrailVerdict(INSUFFICIENT_DATA, kind, None, None, limit, "needs " + "; ".join(parts), missing)


def relative_guardrail(control: MomentStats, treatment: MomentStats, harmful_direction: str, max_degradation: float,
                       alpha: float = 0.05, tuning: float = DEFAULT_TUNING, min_units: int = 30,
                       min_events: float = MIN_EFFECTIVE_EVENTS) -> GuardrailVerdict:
    """Breached when the always-valid bound shows harm beyond `max_degradation` (relative).
    harmful_direction: "INCREASE" (e.g. refunds) or "DECREASE" (e.g. revenue)."""
    kind = "RELATIVE_DEGRADATION"
    if not _finite_stats(control, treatment) or not math.isfinite(max_degradation) or max_degradation < 0:
        return GuardrailVerdict(INVALID_DATA, kind, None, None, None, "non-finite statistics or margin")
    check = relative_check(*_sums(control), *_sums(treatment), harmful_direction, max_degradation, alpha, tuning,
                           min_units, min_events)
    if not bool(check.acts):
        return _shortfall(kind, max_degradation, check, min_units, min_events)
    estimate, bound = float(check.estimate), float(check.bound)
    sign = "+" if harmful_direction == INCREASE else "-"
    detail = f"relative effect {estimate:+.4f}, always-valid bound {bound:+.4f} vs margin {sign}{max_degradation:.4f}"
    return GuardrailVerdict(BREACHED if bool(check.breached) else OK, kind, estimate, bound, max_degradation, detail)


def absolute_guardrail(treatment: MomentStats, maximum: float | None = None, minimum: float | None = None,
                       alpha: float = 0.05, tuning: float = DEFAULT_TUNING, min_units: int = 30,
                       reference: MomentStats | None = None,
                       min_events: float = MIN_EFFECTIVE_EVENTS) -> GuardrailVerdict:
    """Breached when the always-valid bound of the treatment's own level crosses the threshold
    (e.g. refund rate max 0.08: breach when even the lower bound exceeds 0.08). `reference` (the
    control arm) supplies the variance floor and the information floor of a non-binary metric."""
    kind = "ABSOLUTE_MAX" if maximum is not None else "ABSOLUTE_MIN"
    limit = maximum if maximum is not None else minimum
    arms = [treatment] + ([reference] if reference is not None else [])
    if limit is None or not math.isfinite(limit) or not _finite_stats(*arms):
        return GuardrailVerdict(INVALID_DATA, kind, None, None, None, "non-finite statistics or limit")
    ref = _sums(reference) if reference is not None else None
    check = absolute_check(*_sums(treatment), float(limit),
                           INCREASE if maximum is not None else DECREASE, ref, alpha, tuning, min_units, min_events)
    if not bool(check.acts):
        return _shortfall(kind, limit, check, min_units, min_events)
    mean, bound = float(check.estimate), float(check.bound)
    return GuardrailVerdict(BREACHED if bool(check.breached) else OK, kind, mean, bound, limit,
                            f"treatment level {mean:.4f}, always-valid bound {bound:.4f} vs limit {limit}")
