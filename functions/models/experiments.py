"""Experiment definitions, lifecycle requests, KPI events and the kill-switch message."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, StringConstraints, model_validator

from functions.core.metrics.catalog import KpiMetricRef, MetricRef, RatioMetricDefinition
from functions.core.metrics.facts import MAX_EXPERIMENT_SQL_CHARS, text_chars
from functions.models.common import (
    MAX_DEFINITION_BYTES,
    Actor,
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
    # A MEAN KPI's per-unit skewness read from its history (e.g. 28 days of all users,
    # docs/statistics.md "Skewness gate"): with it the gate's shape is not read from the samples.
    historicalSkewness: FiniteFloat | None = Field(default=None, ge=0, le=1e6)
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
        if self.historicalSkewness is not None and self.type != KpiType.MEAN:
            raise ValueError("historicalSkewness is for MEAN KPIs (a 0/1 or ratio metric's shape comes from its data)")
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


# -- answers (built from services/experiments and services/sweep.py) ------------------------------

class KpiRejection(StrictModel):
    eventId: str
    code: str
    message: str


class KpiIngestResult(StrictModel):
    accepted: int
    droppedNoConsent: int
    rejected: list[KpiRejection] = Field(description="events the system cannot value (e.g. UNKNOWN_CURRENCY)")


class LifecycleStep(StrictModel):
    step: str = Field(description="CREATED, SUBMITTED, APPROVED_BY or STARTED")
    state: str
    uid: str | None = Field(default=None, description="the approver (APPROVED_BY)")


class LifecycleResult(StrictModel):
    experimentId: str
    state: str
    contentHash: str
    steps: list[LifecycleStep]


class ExperimentEvent(StrictModel):
    experimentId: str
    version: int
    action: str
    from_: str | None = Field(alias="from")
    to: str | None
    actor: Actor
    reason: str
    details: dict[str, Any]
    at: str


class ExperimentEventList(StrictModel):
    events: list[ExperimentEvent]


class SweepFailure(StrictModel):
    step: str
    code: str
    message: str
    experimentId: str | None = None
    retry: bool | None = None


class SweepStatus(StrictModel):
    """The latest sweep's outcome per step (experimentSnapshots/_sweep)."""

    at: str
    ok: bool
    steps: dict[str, str] = Field(description="step -> OK or FAILED")
    failures: list[SweepFailure]


class SweptExperiment(StrictModel):
    experimentId: str | None
    snapshot: str | None = None
    skipped: bool | None = None
    acted: str | None = None
    breached: int | None = None
    error: str | None = Field(default=None, description="the error code when this experiment's snapshot failed")


class SweepResult(SweepStatus):
    experiments: list[SweptExperiment]
    rollouts: list[dict[str, Any]] = Field(description="rollout changes the sweep made (see the rollouts API)")
    checkpoint: dict[str, Any] | None
    outboxPublished: int


class ExperimentHealth(StrictModel):
    experimentId: str
    state: str
    overall: str = Field(description="HEALTHY, AT_RISK or VIOLATED")
    reasons: list[str]
    exposures: dict[str, int]
    unitsWithKpis: dict[str, float]
    srm: dict[str, Any]
    expectedSplit: dict[str, float]
    rollout: dict[str, Any]
    guardrails: list[dict[str, Any]]
    latestSnapshotAgeSeconds: float | None
    latestSnapshotId: str | None
    sweep: SweepStatus | None


class ExperimentList(StrictModel):
    experiments: list[ExperimentOut]


class ExperimentSummary(StrictModel):
    id: str
    name: str
    state: str | None
    owner: str | None
    offerType: str | None = None
    createdAt: str | None = None
    startedAt: str | None = None
    endedAt: str | None = None
    daysRunning: float | None = None
    rolloutStage: float | None = None
    primaryMetric: str | None = None
    verdicts: dict[str, dict[str, str | None]] = Field(default_factory=dict,
                                                        description="arm -> latest analysis decision and trust")
    analysisId: str | None = None
    guardrailStatus: str = Field(description="HELD, BREACHED, WAITING_FOR_DATA, NO_DATA or NONE_DEFINED")
    requiredApprovers: list[str] = Field(default_factory=list)
    approvedBy: list[str] = Field(default_factory=list)
    pendingApprovers: list[str] = Field(default_factory=list)
    version: int = 0


class SummaryList(StrictModel):
    experiments: list[ExperimentSummary]


class SnapshotPoint(StrictModel):
    snapshotId: str
    takenAt: str | None
    state: str | None = None
    stage: float | None = None
    units: dict[str, int] = Field(default_factory=dict)
    guardrails: list[dict[str, Any]] = Field(default_factory=list)
    acted: str | None = None


class SnapshotSeries(StrictModel):
    experimentId: str
    snapshots: list[SnapshotPoint]


class ExperimentOverview(StrictModel):
    """What the console's experiment page needs, from one document read and one snapshot query."""

    experiment: ExperimentOut
    health: ExperimentHealth = Field(description="as GET /{id}/health")
    snapshots: list[SnapshotPoint] = Field(description="as GET /{id}/snapshots, oldest first")
