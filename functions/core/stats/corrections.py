"""Bias corrections on unit-level data: who is excluded (fraud, bots, consent, region) and how
extreme values are capped. Every exclusion is counted per arm so its balance can be tested."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from functions.core.errors import ErrorCode, Unprocessable

MAD_SCALE = 0.6745  # makes the MAD consistent with the standard deviation under normality


@dataclass
class UnitData:
    """Unit-level inputs of one arm (arrays of equal length)."""

    value: np.ndarray
    pre: np.ndarray | None = None
    fraud: np.ndarray | None = None  # bool
    consent: np.ndarray | None = None  # bool: analytics consent given
    region: np.ndarray | None = None  # object/str
    events: np.ndarray | None = None  # event counts (activity)
    active_days: np.ndarray | None = None
    identical_timestamp_share: np.ndarray | None = None
    currency: np.ndarray | None = None
    crosses_arms: np.ndarray | None = None  # bool: linked (referral/gift/wallet) to a unit in another arm
    denominator: np.ndarray | None = None  # ratio KPIs: value is the numerator per unit

    def __len__(self) -> int:
        return int(self.value.size)


@dataclass(frozen=True)
class ExclusionConfig:
    restricted_regions: tuple[str, ...] = ()
    max_events_per_day: float = 500.0
    max_identical_timestamp_share: float = 0.5
    max_value: float | None = None  # impossible values
    mad_threshold: float = 6.0  # robust z on activity
    winsor_percentile: float | None = 0.99
    winsor_cap: float | None = None
    base_currency: str = "USD"
    currency_rates: Mapping[str, float] = field(default_factory=lambda: {"USD": 1.0})


def normalise_currency(values: np.ndarray, currencies: np.ndarray | None, rates: Mapping[str, float]) -> np.ndarray:
    if currencies is None:
        return values
    unknown = sorted({str(c) for c in currencies} - set(rates))
    if unknown:
        raise Unprocessable(f"no exchange rate for {unknown}",
                            code=ErrorCode.UNKNOWN_CURRENCY, details={"currencies": unknown})
    factors = np.array([rates[str(c)] for c in currencies], dtype=float)
    return values * factors


def robust_outliers(activity: np.ndarray, threshold: float) -> np.ndarray:
    """Median/MAD robust z-score above threshold (abnormal usage, not a value cap)."""
    if activity.size == 0:
        return np.zeros(0, dtype=bool)
    median = np.median(activity)
    mad = np.median(np.abs(activity - median))
    if mad == 0:
        return activity > median * 10 if median > 0 else np.zeros(activity.size, dtype=bool)
    return MAD_SCALE * (activity - median) / mad > threshold


def exclusion_masks(arm: UnitData, cfg: ExclusionConfig, activity_median: float | None = None,
                    activity_mad: float | None = None, restricted: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """One boolean mask per filter (True = removed), applied in this order; a unit is counted
    under the first filter that removes it. `restricted`: the region rule's mask when the caller
    already has region codes (saves converting every region to a string)."""
    n = len(arm)
    none = np.zeros(n, dtype=bool)
    consent = ~arm.consent.astype(bool) if arm.consent is not None else none
    if restricted is not None:
        region = restricted
    else:
        region = (np.isin(arm.region.astype(str), list(cfg.restricted_regions))
                  if arm.region is not None and cfg.restricted_regions else none)
    fraud = arm.fraud.astype(bool) if arm.fraud is not None else none
    bot = none.copy()
    if arm.events is not None:
        days = arm.active_days if arm.active_days is not None else np.ones(n)
        bot |= arm.events / np.maximum(days, 1) > cfg.max_events_per_day
        if activity_median is not None and activity_mad:
            bot |= MAD_SCALE * (arm.events - activity_median) / activity_mad > cfg.mad_threshold
    if arm.identical_timestamp_share is not None:
        bot |= arm.identical_timestamp_share > cfg.max_identical_timestamp_share
    if cfg.max_value is not None:
        bot |= (arm.value > cfg.max_value) | (arm.value < 0)
    masks, taken = {}, none.copy()
    for name, mask in (("consent", consent), ("region", region), ("fraud", fraud), ("bot", bot)):
        masks[name] = mask & ~taken
        taken |= mask
    return masks


def winsor_cap(pooled: np.ndarray, percentile: float) -> float | None:
    """The `percentile` of the pooled NON-ZERO values (positive ones: an upper cap can never fall
    at or below zero). With 1% payers the pooled 99th percentile is 0 and would erase revenue; with
    2% it falls inside the payers' amounts. Among payers it caps only the extreme payers."""
    positive = pooled[pooled > 0]
    return float(np.quantile(positive, percentile)) if positive.size else None


def winsorize(pooled: np.ndarray, arms: Sequence[np.ndarray], percentile: float | None,
              cap: float | None) -> tuple[list[np.ndarray], float | None, list[int]]:
    """Cap each arm at one threshold computed on the pooled arms (so the cap cannot differ by arm)."""
    if cap is None and percentile is not None and pooled.size:
        cap = winsor_cap(pooled, percentile)
    if cap is None:
        return list(arms), None, [0] * len(arms)
    return [np.minimum(a, cap) for a in arms], cap, [int((a > cap).sum()) for a in arms]
