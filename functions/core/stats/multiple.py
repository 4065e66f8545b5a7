"""Multiple-comparison corrections for secondary KPIs (primary stays uncorrected, by design)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def holm(p_values: Sequence[float]) -> list[float]:
    p = np.asarray(p_values, dtype=float)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p)
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out.tolist()


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    p = np.asarray(p_values, dtype=float)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p)[::-1]
    ranked = p[order] * m / np.arange(m, 0, -1)
    adjusted = np.minimum.accumulate(ranked)
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out.tolist()


def adjust(p_values: Sequence[float], method: str) -> list[float]:
    return {"holm": holm, "bh": benjamini_hochberg, "none": list}[method](p_values)
