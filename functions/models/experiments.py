"""Experiment definitions, lifecycle requests, KPI events and the kill-switch message."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, StringConstraints, model_validator

from functions.core.metrics.catalog import KpiMetricRef, MetricRef, RatioMetricDefinition
from functions.core.metrics.facts import MAX_EXPERIMENT_SQL_CHARS, text_chars
from functions.models.common import (
    MAX_DEFINITION_BYTES,
    FiniteFloat,
    Id,
    JsonMap,
    Name,
    PastTimestamp,
    StrictModel,
    Text,
    UnitId,
    json_size,
)


class OfferType(StrEnum):
    PRICE_CHANGE = "PRICE_CHANGE"
    PAYWALL = "PAYWALL"
    PROMOTION = "PROMOTION"
    BUNDLE = "BUNDLE"
    TRIAL = "TRIAL"
    DISCOUNT = "DISCOUNT"


class Hypothesis(StrictModel):
    statement: Text = Field(min_length=1)
    expectedImpact: Text = ""
    risks: Text = ""
    successCriteria: Text = ""


class Variant(StrictModel):
    key: Id
    weight: FiniteFloat = Field(gt=0, le=100)
    offer: JsonMap = Field(default_factory=dict, description="e.g. {'price': 9.99, 'currency': 'EUR'}")


class KpiRole(StrEnum):
    PRIMARY = "PRIMARY"
    SECONDARY = "SECONDARY"


class KpiType(StrEnum):
    MEAN = "MEAN"
    PROPORTION = "PROPORTION"
    RATIO = "RATIO"


class Direction(StrEnum):
    INCREASE = "INCREASE"
    DECREASE = "DECREASE"


class Kpi(StrictModel):
    metric: Id
    role: KpiRole
    type: KpiType = KpiType.MEAN
    direction: Direction = Direction.INCREASE
    perUnitCap: FiniteFloat | None = Field(default=None, gt=0)
    numerator: Id | None = None
    denominator: Id | None = None
    # where the metric's facts come from (docs/metrics.md); without it, the KPI events `kpi.<metric>`
    definition: KpiMetricRef | None = None

    @model_validator(mode="after")
    def _ratio_parts(self) -> Kpi:
        ratio_definition = isinstance(self.definition, RatioMetricDefinition)
        if ratio_definition and self.type != KpiType.RATIO:
            raise ValueError("a ratio definition needs a KPI of type RATIO")
        if self.type == KpiType.RATIO and self.definition is not None and not ratio_definition:
            raise ValueError("a RATIO KPI's definition is a ratio (name, numerator, denominator)")
        if self.type == KpiType.RATIO and not (self.numerator and self.denominator):
            raise ValueError("a RATIO KPI names its numerator and denominator metrics")
        return self


class GuardrailAction(StrEnum):
    ALERT = "ALERT"
    PAUSE = "PAUSE"
    KILL = "KILL"


class Guardrail(StrictModel):
    metric: Id
    harmfulDirection: Direction = Direction.INCREASE
    maxRelativeDegradation: FiniteFloat | None = Field(default=None, ge=0, le=10)
    absoluteMax: FiniteFloat | None = None
    absoluteMin: FiniteFloat | None = None
    action: GuardrailAction = GuardrailAction.PAUSE
    minUnitsPerArm: int = Field(default=100, ge=2, le=10_000_000)
    # Effective events ((sum x)^2 / sum x^2; conversions of a 0/1 metric) before the check may act;
    # the calibration (docs/calibration.md) holds from 10 up, so a lower floor is refused.
    minEffectiveEvents: FiniteFloat = Field(default=10, ge=10, le=10_000_000)
    definition: MetricRef | None = None  # as a KPI's; without it, the KPI events `kpi.<metric>`

    @model_validator(mode="after")
    def _has_limit(self) -> Guardrail:
        if self.maxRelativeDegradation is None and self.absoluteMax is None and self.absoluteMin is None:
            raise ValueError("a guardrail needs maxRelativeDegradation, absoluteMax or absoluteMin")
        return self


class ExperimentDefinition(StrictModel):
    name: Name
    description: Text = ""
    hypothesis: Hypothesis
    offerType: OfferType
    offerConfig: JsonMap = Field(default_factory=dict)
    variants: list[Variant] = Field(min_length=2, max_length=10)
    targeting: list[JsonMap] = Field(default_factory=list, max_length=50)
    holdoutCohortId: Id | None = None
    kpis: list[Kpi] = Field(min_length=1, max_length=30)
    guardrails: list[Guardrail] = Field(default_factory=list, max_length=30)
    minimumDetectableEffect: FiniteFloat = Field(default=0.05, gt=0, le=10)
    plannedDurationDays: int = Field(default=14, ge=1, le=365)
    requiredApprovers: list[Id] = Field(default_factory=list, max_length=10)
    layer: Id | None = None
    layerShare: FiniteFloat = Field(default=1.0, gt=0, le=1)
    restrictedRegions: list[Id] = Field(default_factory=list, max_length=300)
    teamId: Id | None = None

    @model_validator(mode="before")
    @classmethod
    def _sql_budget(cls, data: Any) -> Any:
        """Metric definitions' SQL is parsed when validated: bound it all before any is parsed."""
        if isinstance(data, dict):
            parts = [item.get("definition") for key in ("kpis", "guardrails") if isinstance(data.get(key), list)
                     for item in data[key] if isinstance(item, dict)]
            chars = text_chars(parts)
            if chars > MAX_EXPERIMENT_SQL_CHARS:
                raise ValueError(f"the metric definitions hold {chars} characters of text; "
                                 f"the limit is {MAX_EXPERIMENT_SQL_CHARS}")
        return data

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentDefinition:
        primaries = [k for k in self.kpis if k.role == KpiRole.PRIMARY]
        if len(primaries) != 1:
            raise ValueError("exactly one PRIMARY KPI is required")
        keys = [v.key for v in self.variants]
        if len(set(keys)) != len(keys):
            raise ValueError("variant keys must be unique")
        size = json_size(self.model_dump(mode="json"))
        if size > MAX_DEFINITION_BYTES:  # stored whole in the experiment and its ledger entry (1 MiB each)
            raise ValueError(f"definition is {size} bytes of JSON; the limit is {MAX_DEFINITION_BYTES}")
        return self


class CreateExperiment(ExperimentDefinition):
    id: Id | None = None


class UpdateExperiment(StrictModel):
    definition: ExperimentDefinition
    expectedVersion: int | None = None


class Reason(StrictModel):
    reason: Text = Field(min_length=1)
    expectedVersion: int | None = None


class OptionalReason(StrictModel):
    reason: Text = ""
    expectedVersion: int | None = None


Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class ApproveRequest(StrictModel):
    comment: Text = ""
    contentHash: Sha256Hex | None = Field(default=None, description="the content hash the approver reviewed; "
                                          "a different current hash is refused (409 CONTENT_HASH_MISMATCH)")


class Consent(StrictModel):
    analytics: bool = True


class KpiEvent(StrictModel):
    eventId: Id
    unitId: UnitId
    metric: Id
    value: FiniteFloat = Field(ge=0, le=1e12)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    timestamp: PastTimestamp
    region: Id | None = None
    consent: Consent = Field(default_factory=Consent)
    preValue: FiniteFloat | None = Field(default=None, ge=0, le=1e12)


class KpiBatch(StrictModel):
    events: list[KpiEvent] = Field(min_length=1, max_length=1000)


class LifecycleRequest(StrictModel):
    definition: CreateExperiment
    approverTokens: list[str] = Field(default_factory=list, max_length=10, description="each approver's ID "
                                      "token, carrying the claim `approvesContentHash` (see /lifecycle/content-hash)")


class ContentHashOut(StrictModel):
    experimentId: str
    contentHash: str


class ExperimentOut(StrictModel):
    id: str
    state: str
    version: int
    definition: dict[str, Any]
    approvals: dict[str, Any] = Field(default_factory=dict)
    rollout: dict[str, Any] | None = None
    layerRange: list[float] | None = None
    planHash: str | None = None
    contentHash: str | None = None
    author: str | None = None
    editors: list[str] = Field(default_factory=list)
