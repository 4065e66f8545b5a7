"""Sufficient statistics: everything the tests need, additive across shards and batches.

Per unit i with metric total x_i and pre-period value p_i (CUPED covariate):
MomentStats holds n, Σx, Σx², Σp, Σp², Σxp. Ratio metrics (numerator y_i, denominator d_i per
unit) hold n, Σy, Σy², Σd, Σd², Σyd. Sums of shards are the stats of the union, so the sweep
reads O(shards) documents, never unit rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields

import numpy as np


@dataclass(frozen=True)
class MomentStats:
    n: float = 0.0
    sum_x: float = 0.0
    sum_x2: float = 0.0
    sum_pre: float = 0.0
    sum_pre2: float = 0.0
    sum_xpre: float = 0.0

    def __add__(self, other: MomentStats) -> MomentStats:
        return MomentStats(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def mean(self) -> float:
        return self.sum_x / self.n if self.n else 0.0

    @property
    def var(self) -> float:
        """Sample variance (n - 1)."""
        if self.n < 2:
            return 0.0
        return max(0.0, (self.sum_x2 - self.sum_x**2 / self.n) / (self.n - 1))

    @property
    def pre_mean(self) -> float:
        return self.sum_pre / self.n if self.n else 0.0

    @property
    def pre_var(self) -> float:
        if self.n < 2:
            return 0.0
        return max(0.0, (self.sum_pre2 - self.sum_pre**2 / self.n) / (self.n - 1))

    @property
    def cov_x_pre(self) -> float:
        if self.n < 2:
            return 0.0
        return (self.sum_xpre - self.sum_x * self.sum_pre / self.n) / (self.n - 1)

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, raw: Mapping[str, float]) -> MomentStats:
        return cls(*(float(raw.get(f.name, 0.0) or 0.0) for f in fields(cls)))

    @classmethod
    def from_arrays(cls, x: Iterable[float], pre: Iterable[float] | None = None) -> MomentStats:
        xa = np.asarray(list(x) if not isinstance(x, np.ndarray) else x, dtype=float)
        pa = np.zeros_like(xa) if pre is None else np.asarray(pre, dtype=float)
        return cls(float(xa.size), float(xa.sum()), float((xa * xa).sum()), float(pa.sum()),
                   float((pa * pa).sum()), float((xa * pa).sum()))

    @classmethod
    def of_values(cls, x: float, pre: float = 0.0) -> MomentStats:
        """The contribution of one unit."""
        return cls(1.0, x, x * x, pre, pre * pre, x * pre)


@dataclass(frozen=True)
class RatioStats:
    n: float = 0.0
    sum_num: float = 0.0
    sum_num2: float = 0.0
    sum_den: float = 0.0
    sum_den2: float = 0.0
    sum_numden: float = 0.0

    def __add__(self, other: RatioStats) -> RatioStats:
        return RatioStats(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, raw: Mapping[str, float]) -> RatioStats:
        return cls(*(float(raw.get(f.name, 0.0) or 0.0) for f in fields(cls)))

    @classmethod
    def from_arrays(cls, num: Iterable[float], den: Iterable[float]) -> RatioStats:
        y, d = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
        return cls(float(y.size), float(y.sum()), float((y * y).sum()), float(d.sum()), float((d * d).sum()),
                   float((y * d).sum()))
