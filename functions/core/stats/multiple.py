"""Multiple-comparison corrections for secondary KPIs (primary stays uncorrected, by design).

Only finite p-values in [0, 1] are tests: a missing or NaN p-value (a KPI whose estimate has a
coded status) is not counted in m and stays NaN, so it can neither dilute nor pass the others."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def _valid_only(correct: Callable[[np.ndarray], np.ndarray], p_values: Sequence[float | None]) -> list[float]:
    p = np.array([np.nan if v is None else v for v in p_values], dtype=float)
    valid = np.isfinite(p) & (p >= 0) & (p <= 1)
    out = np.full(p.size, np.nan)
    if valid.any():
        out[valid] = correct(p[valid])
    return out.tolist()


def _holm(p: np.ndarray) -> np.ndarray:
    m = p.size
    order = np.argsort(p)
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def _bh(p: np.ndarray) -> np.ndarray:
    m = p.size
    order = np.argsort(p)[::-1]
    adjusted = np.minimum.accumulate(p[order] * m / np.arange(m, 0, -1))
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def holm(p_values: Sequence[float | None]) -> list[float]:
    return _valid_only(_holm, p_values)


def benjamini_hochberg(p_values: Sequence[float | None]) -> list[float]:
    return _valid_only(_bh, p_values)


def adjust(p_values: Sequence[float | None], method: str) -> list[float]:
    return {"holm": holm, "bh": benjamini_hochberg, "none": lambda p: _valid_only(lambda v: v, p)}[method](p_values)
