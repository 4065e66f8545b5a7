"""Sufficient statistics: everything the tests need, additive across shards and batches.

Per unit i with metric total x_i and pre-period value p_i (CUPED covariate):
MomentStats holds n, Σ(x-Kx), Σ(x-Kx)², Σ(p-Kp), Σ(p-Kp)², Σ(x-Kx)(p-Kp) about fixed shifts Kx, Kp,
and Σ(x-Kx)³ (the metric's third moment: how skewed its mean is, which decides whether a t-test
may act; statistics stored before it existed read as symmetric).
Ratio metrics (numerator y_i, denominator d_i per unit) hold the same about Ky, Kd.

Why shifts: raw Σx² loses every digit of the variance once mean/sd reaches ~1e8 (prices in minor
units, cumulative LTV); sums about a shift near the mean keep them (the "shifted data" algorithm).
Shards written with the same shift add field by field; stats with different shifts merge by the
pairwise update of Chan, Golub & LeVeque (1979) into centred moments. Zero shifts are the legacy
raw sums, so documents stored before shifts existed read unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from functions.core.errors import ErrorCode, Unprocessable

S = TypeVar("S", bound="_Shifted")


_NAMES: dict[type, tuple[str, ...]] = {}


def _names(cls: type) -> tuple[str, ...]:
    # a plain dict, not functools.cache: mypy cannot see that a dataclass type is hashable
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


def _array(values: Iterable[float]) -> np.ndarray:
    return np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=float)


def _shift_of(a: np.ndarray) -> float:
    """The array's mean as shift (0 for an empty or non-finite array: the sums then carry the NaN)."""
    if not a.size:
        return 0.0
    m = float(a.mean())
    return m if math.isfinite(m) else 0.0


@dataclass(frozen=True)
class _Shifted:
    """Six sums of two variables (u, v) about the shifts (ku, kv), in field order:
    n, Σu', Σu'², Σv', Σv'², Σu'v' with u' = u - ku, v' = v - kv; then ku, kv."""

    if TYPE_CHECKING:  # the subclasses' generated __init__ takes the eight fields in this order
        def __init__(self, *raw: float) -> None: ...

    def _raw(self) -> tuple[float, ...]:
        raise NotImplementedError

    def __add__(self: S, other: S) -> S:
        a, b = self._raw(), other._raw()
        if a[6:] == b[6:]:
            return type(self)(*(x + y for x, y in zip(a[:6], b[:6], strict=True)), *a[6:])
        if b[0] == 0:
            return self
        if a[0] == 0:
            return other
        # Chan et al.: pairwise update of the centred moments, expressed about the shifts of the
        # larger part (offsets from a shift stay small, so no digits are lost at large levels)
        big, small = (a, b) if a[0] >= b[0] else (b, a)
        (nb, _, _, uub, vvb, uvb), (ns, _, _, uus, vvs, uvs) = type(self)(*big).centred(), type(self)(*small).centred()
        ku, kv = big[6], big[7]
        ob_u, ob_v = big[1] / nb, big[3] / nb
        os_u, os_v = (small[6] - ku) + small[1] / ns, (small[7] - kv) + small[3] / ns
        n = nb + ns
        w = nb * ns / n
        du, dv = os_u - ob_u, os_v - ob_v
        mu, mv = ob_u + du * ns / n, ob_v + dv * ns / n
        m_uu, m_vv, m_uv = uub + uus + du * du * w, vvb + vvs + dv * dv * w, uvb + uvs + du * dv * w
        return type(self)(n, n * mu, m_uu + n * mu * mu, n * mv, m_vv + n * mv * mv, m_uv + n * mu * mv, ku, kv)

    def centred(self) -> tuple[float, float, float, float, float, float]:
        """(n, mean u, mean v, Σ(u-ū)², Σ(v-v̄)², Σ(u-ū)(v-v̄))."""
        n, su, suu, sv, svv, suv, ku, kv = self._raw()
        if n <= 0:
            return n, ku, kv, 0.0, 0.0, 0.0
        du, dv = su / n, sv / n
        return (n, ku + du, kv + dv, max(0.0, suu - su * du), max(0.0, svv - sv * dv), suv - su * dv)

    def reshift(self: S, ku: float = 0.0, kv: float = 0.0) -> S:
        """The same stats about other shifts; `reshift()` gives the raw sums Σu, Σu², ... that peers
        such as gbstats take (exact algebra, but raw sums lose digits at large offsets)."""
        n, su, suu, sv, svv, suv, ou, ov = self._raw()
        c, e = ou - ku, ov - kv
        return type(self)(n, su + n * c, suu + 2 * c * su + n * c * c, sv + n * e, svv + 2 * e * sv + n * e * e,
                          suv + c * sv + e * su + n * c * e, ku, kv)

    @classmethod
    def _from_pair(cls: type[S], u: np.ndarray, v: np.ndarray) -> S:
        ku, kv = _shift_of(u), _shift_of(v)
        du, dv = u - ku, v - kv
        dot = np.einsum  # not BLAS: its threads stall on a busy machine, einsum's loop does not
        with np.errstate(over="ignore", invalid="ignore"):  # overflow -> inf sums -> is_finite is False
            return cls(float(u.size), float(du.sum()), float(dot("i,i", du, du)), float(dv.sum()),
                       float(dot("i,i", dv, dv)), float(dot("i,i", du, dv)), ku, kv)

    @property
    def is_finite(self) -> bool:
        """All sums and shifts finite and a non-negative count (else no test may use them)."""
        raw = self._raw()
        return all(map(math.isfinite, raw)) and raw[0] >= 0

    def to_dict(self) -> dict[str, float]:
        """Zero shifts are left out: such a document is the legacy raw-sum document."""
        return {name: float(getattr(self, name)) for name in _names(type(self))
                if getattr(self, name) or not name.startswith("shift_")}

    @classmethod
    def from_dict(cls: type[S], raw: Mapping[str, Any]) -> S:
        return cls(*[float(raw.get(name) or 0.0) for name in _names(cls)])


@dataclass(frozen=True)
class MomentStats(_Shifted):
    n: float = 0.0
    sum_x: float = 0.0
    sum_x2: float = 0.0
    sum_pre: float = 0.0
    sum_pre2: float = 0.0
    sum_xpre: float = 0.0
    shift_x: float = 0.0
    shift_pre: float = 0.0
    sum_x3: float = 0.0  # Σ(x - Kx)³

    def _raw(self) -> tuple[float, ...]:
        return (self.n, self.sum_x, self.sum_x2, self.sum_pre, self.sum_pre2, self.sum_xpre, self.shift_x,
                self.shift_pre)

    @property
    def is_finite(self) -> bool:
        return super().is_finite and math.isfinite(self.sum_x3)

    @property
    def m3(self) -> float:
        """Σ(x - x̄)³, the centred third moment sum."""
        if self.n <= 0:
            return 0.0
        d = self.sum_x / self.n
        return self.sum_x3 - 3.0 * d * self.sum_x2 + 2.0 * self.n * d * d * d

    @property
    def k3(self) -> float:
        """The unbiased third cumulant of one unit's value (Fisher's k-statistic k3)."""
        n = self.n
        return n * self.m3 / ((n - 1) * (n - 2)) if n >= 3 else 0.0

    @property
    def skewness(self) -> float | None:
        """k3 / s³, one unit's standardised skewness (None below three units or without spread):
        what the skewness gate, a metric's profile and the calibration's history all read."""
        var = self.var
        return self.k3 / var**1.5 if self.n >= 3 and var > 0 else None

    def __add__(self, other: MomentStats) -> MomentStats:
        """Shards with the same shifts add field by field; otherwise Chan et al. for the second
        moments and Pébay (2008, eq. 2.1) for the third, expressed about the larger part's shift."""
        merged = super().__add__(other)
        if other.n == 0 or self.n == 0 or (self.shift_x, self.shift_pre) == (other.shift_x, other.shift_pre):
            if merged is self or merged is other:
                return merged
            return replace(merged, sum_x3=self.sum_x3 + other.sum_x3)
        big, small = (self, other) if self.n >= other.n else (other, self)
        nb, ns, n = big.n, small.n, merged.n
        m2b, m2s = big.centred()[3], small.centred()[3]
        delta = (small.shift_x - big.shift_x) + (small.sum_x / ns - big.sum_x / nb)  # small mean - big mean
        m3 = (big.m3 + small.m3 + delta**3 * nb * ns * (nb - ns) / (n * n)
              + 3.0 * delta * (nb * m2s - ns * m2b) / n)
        d = merged.sum_x / n  # the merged mean's offset from the kept shift
        m2 = merged.centred()[3]
        return replace(merged, sum_x3=m3 + 3.0 * d * m2 + n * d**3)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> MomentStats:
        """A document stored before the third moment existed reads as a symmetric metric
        (Σ(x - x̄)³ = 0, whatever its shift), so its analysis replays with the verdict it had."""
        stats = super().from_dict(raw)
        if "sum_x3" in raw or stats.n <= 0:
            return stats
        d = stats.sum_x / stats.n
        return replace(stats, sum_x3=3.0 * d * stats.sum_x2 - 2.0 * stats.n * d**3)

    def reshift(self, ku: float = 0.0, kv: float = 0.0) -> MomentStats:
        c = self.shift_x - ku
        moved = super().reshift(ku, kv)
        return replace(moved, sum_x3=self.sum_x3 + 3 * c * self.sum_x2 + 3 * c * c * self.sum_x + self.n * c**3)

    @property
    def mean(self) -> float:
        return self.shift_x + self.sum_x / self.n if self.n else 0.0

    @property
    def total_x(self) -> float:
        """Σx (the raw total, e.g. conversions of a 0/1 metric)."""
        return self.sum_x + self.n * self.shift_x

    @property
    def var(self) -> float:
        """Sample variance (n - 1)."""
        return self.centred()[3] / (self.n - 1) if self.n >= 2 else 0.0

    @property
    def pre_mean(self) -> float:
        return self.shift_pre + self.sum_pre / self.n if self.n else 0.0

    @property
    def pre_var(self) -> float:
        return self.centred()[4] / (self.n - 1) if self.n >= 2 else 0.0

    @property
    def cov_x_pre(self) -> float:
        return self.centred()[5] / (self.n - 1) if self.n >= 2 else 0.0

    def pre_only(self) -> MomentStats:
        """The covariate's own moments as a metric (for the pre-period balance test)."""
        return MomentStats(self.n, self.sum_pre, self.sum_pre2, shift_x=self.shift_pre)  # third moment not kept

    @classmethod
    def from_arrays(cls, x: Iterable[float], pre: Iterable[float] | None = None) -> MomentStats:
        xa = _array(x)
        pa = np.zeros_like(xa) if pre is None else _array(pre)
        if pa.shape != xa.shape:
            raise Unprocessable("covariate and values differ in length", code=ErrorCode.COVARIATE_LENGTH_MISMATCH,
                                details={"values": int(xa.size), "covariate": int(pa.size)})
        stats = cls._from_pair(xa, pa)
        du = xa - stats.shift_x
        with np.errstate(over="ignore", invalid="ignore"):
            return replace(stats, sum_x3=float(np.einsum("i,i,i", du, du, du)))

    @classmethod
    def of_values(cls, x: float, pre: float = 0.0) -> MomentStats:
        """The contribution of one unit."""
        return cls(1.0, x, x * x, pre, pre * pre, x * pre, sum_x3=x * x * x)


@dataclass(frozen=True)
class RatioStats(_Shifted):
    n: float = 0.0
    sum_num: float = 0.0
    sum_num2: float = 0.0
    sum_den: float = 0.0
    sum_den2: float = 0.0
    sum_numden: float = 0.0
    shift_num: float = 0.0
    shift_den: float = 0.0

    def _raw(self) -> tuple[float, ...]:
        return (self.n, self.sum_num, self.sum_num2, self.sum_den, self.sum_den2, self.sum_numden, self.shift_num,
                self.shift_den)

    @property
    def total_num(self) -> float:
        return self.sum_num + self.n * self.shift_num

    @property
    def total_den(self) -> float:
        return self.sum_den + self.n * self.shift_den

    @classmethod
    def from_arrays(cls, num: Iterable[float], den: Iterable[float]) -> RatioStats:
        y, d = _array(num), _array(den)
        if y.shape != d.shape:
            raise Unprocessable("numerator and denominator differ in length",
                                code=ErrorCode.DENOMINATOR_LENGTH_MISMATCH,
                                details={"numerator": int(y.size), "denominator": int(d.size)})
        return cls._from_pair(y, d)
