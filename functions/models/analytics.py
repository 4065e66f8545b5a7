"""Analytics requests and answers: fraud signals, analysis runs, replays, the power calculator."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from functions.models.common import Actor, FiniteFloat, Id, PastTimestamp, StrictModel, Text, UnitId


class FraudSignal(StrictModel):
    eventId: Id
    unitId: UnitId
    reason: Text = Field(min_length=1, max_length=500)
    source: Id = "fraud-service"
    flaggedAt: PastTimestamp | None = None


class FraudBatch(StrictModel):
    signals: list[FraudSignal] = Field(min_length=1, max_length=1000)


class AnalysisRequest(StrictModel):
    winsorPercentile: FiniteFloat | None = Field(default=0.99, gt=0.5, le=1.0)
    winsorCap: FiniteFloat | None = Field(default=None, gt=0)
    multipleComparisons: str = Field(default="holm", pattern=r"^(holm|bh|none)$")
    dailyUnitsPerArm: FiniteFloat | None = Field(default=None, gt=0,
                                                 description="default: the exposure rate observed so far")
    maxEventsPerDay: FiniteFloat = Field(default=500.0, gt=0, description="bot rule: event rate per active day")
    maxPlausibleValue: FiniteFloat | None = Field(default=None, gt=0,
                                                  description="bot rule: a unit total above this is impossible")
    maxIdenticalTimestampShare: FiniteFloat = Field(
        default=0.8, gt=0, le=1, description="bot rule: share of a unit's events sharing one timestamp (10+ events)")
    madThreshold: FiniteFloat = Field(default=6.0, gt=0, description="robust (median/MAD) z-score on activity")


class PowerRequest(StrictModel):
    baselineMean: FiniteFloat | None = None
    standardDeviation: FiniteFloat | None = Field(default=None, gt=0)
    baselineRate: FiniteFloat | None = Field(default=None, gt=0, lt=1)
    mdeRelative: FiniteFloat = Field(gt=0, le=10)
    alpha: FiniteFloat = Field(default=0.05, gt=0, lt=0.5)
    power: FiniteFloat = Field(default=0.8, gt=0.5, lt=1)

    @model_validator(mode="after")
    def _baseline(self) -> PowerRequest:
        if self.baselineRate is None and (self.baselineMean is None or self.standardDeviation is None):
            raise ValueError("give baselineRate, or baselineMean with standardDeviation")
        if self.baselineRate is None and self.baselineMean == 0:
            raise ValueError("baselineMean must not be zero for a relative MDE")
        return self


# -- answers (built from services/analytics/analyses.py and the power route) ----------------------

class Recommendation(StrictModel):
    """An arm's verdict on the primary KPI and how far to trust it (core/stats/trust.py)."""

    trust: str
    decision: str
    reasons: list[dict[str, Any]]
    rule: dict[str, Any]


class SecondaryAdjusted(StrictModel):
    method: str
    pValues: dict[str, float | None]


class AnalysisSummary(StrictModel):
    """A published analysis without its per-KPI results."""

    id: str
    experimentId: str
    createdAt: str | None
    createdBy: Actor
    engineVersion: str | None
    fingerprint: str | None
    primaryMetric: str
    recommendation: dict[str, Recommendation] = Field(description="arm -> verdict on the primary KPI")
    unitsAnalysed: int
    holdoutUnits: int
    contaminatedHoldoutUnits: int
    crossingUnits: int
    fraudFlagged: int
    secondaryAdjusted: SecondaryAdjusted


class AnalysisView(AnalysisSummary):
    results: dict[str, dict[str, Any]] = Field(description="KPI -> role, type, arms, checks, fingerprint "
                                               "(docs/analytics.md)")


class AnalysisList(StrictModel):
    analyses: list[AnalysisSummary]


class ReplayCheck(StrictModel):
    fingerprintMatches: bool
    verdictMatches: bool


class ReplayResult(StrictModel):
    analysisId: str
    reproduced: bool
    metrics: dict[str, ReplayCheck]


class FraudRecorded(StrictModel):
    recorded: int = Field(description="flags newly recorded (a redelivered eventId counts once)")


class PowerResult(StrictModel):
    samplePerArm: int
    baselineMean: float
    standardDeviation: float
    mdeAbsolute: float
    alpha: float
    power: float
    zAlpha: float


class MetricProfileQuery(StrictModel):
    days: int = Field(default=28, ge=1, le=365, description="the window: the last `days` days")
    experimentId: Id | None = Field(default=None, description="only units exposed to this experiment "
                                                              "(default: to any experiment)")


class MetricProfile(StrictModel):
    """A metric's shape over its history: what `Kpi.historicalSkewness` is set from."""

    metric: str
    since: str
    until: str
    experimentId: str | None
    units: int = Field(description="units with analytics consent exposed to any experiment (or the one named)")
    nonZeroUnits: int = Field(description="of them, units whose total in the window is not zero")
    mean: float | None
    sd: float | None
    skewness: float | None = Field(description="k3 / k2^1.5 of the per-unit totals, zeros included; "
                                               "null below 3 units or without spread")
    neededUnitsPerArm: int | None = Field(description="355 skewness²: units the smaller arm needs before a t "
                                                      "interval on this metric is published")
    estimand: str
