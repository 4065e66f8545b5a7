"""Schemas of holdout cohorts, spillover link events and cohort health (HTTP and Pub/Sub)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from functions.models.common import FiniteFloat, Id, JsonMap, Name, PastTimestamp, StrictModel, Text, UnitId


class UnitType(StrEnum):
    USER = "user"
    DEVICE = "device"
    WALLET = "wallet"


class Scope(StrEnum):
    GLOBAL = "GLOBAL"
    EXPERIMENT = "EXPERIMENT"
    TEAM = "TEAM"


class LinkType(StrEnum):
    REFERRAL = "REFERRAL"
    GIFT = "GIFT"
    SHARED_WALLET = "SHARED_WALLET"


class SpilloverPolicy(StrEnum):
    CLUSTER = "CLUSTER"
    BLOCK = "BLOCK"
    EXCLUDE = "EXCLUDE"
    TRACK = "TRACK"


DEFAULT_POLICIES: dict[str, str] = {
    LinkType.REFERRAL: SpilloverPolicy.EXCLUDE,
    LinkType.GIFT: SpilloverPolicy.BLOCK,
    LinkType.SHARED_WALLET: SpilloverPolicy.CLUSTER,
}

# Rules are kept in the pure core's eligibility format and validated by it (see services.holdouts.rules).
EligibilityRule = JsonMap

FROZEN_FIELDS = ("salt", "percentage", "hashVersion", "eligibility", "unitType")


class CohortCreate(StrictModel):
    name: Name
    description: Text = ""
    percentage: FiniteFloat = Field(gt=0, le=100, description="share of eligible units held out, in percent")
    salt: Id | None = Field(default=None, description="random if omitted; never reuse another cohort's salt")
    hashVersion: int = Field(default=1, ge=1)
    eligibility: list[EligibilityRule] = Field(default_factory=list, max_length=50)
    unitType: UnitType = UnitType.USER
    scope: Scope = Scope.GLOBAL
    teamId: Id | None = None
    experimentId: Id | None = None
    spilloverPolicies: dict[LinkType, SpilloverPolicy] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _scope_ids(self) -> CohortCreate:
        if self.scope == Scope.TEAM and not self.teamId:
            raise ValueError("scope TEAM needs teamId")
        if self.scope == Scope.EXPERIMENT and not self.experimentId:
            raise ValueError("scope EXPERIMENT needs experimentId")
        return self


class CohortUpdate(StrictModel):
    """Partial update; only unfrozen cohorts accept changes to the assignment fields."""

    expectedVersion: int | None = Field(default=None, ge=1, description="optimistic concurrency check")
    name: Name | None = None
    description: Text | None = None
    percentage: FiniteFloat | None = Field(default=None, gt=0, le=100)
    salt: Id | None = None
    hashVersion: int | None = Field(default=None, ge=1)
    eligibility: list[EligibilityRule] | None = Field(default=None, max_length=50)
    unitType: UnitType | None = None
    spilloverPolicies: dict[LinkType, SpilloverPolicy] | None = None


class FreezeRequest(StrictModel):
    expectedVersion: int | None = Field(default=None, ge=1)
    reason: Text = ""


class Cohort(StrictModel):
    id: Id
    name: str
    description: str = ""
    percentage: float
    salt: str
    hashVersion: int
    eligibility: list[EligibilityRule]
    unitType: UnitType
    scope: Scope
    teamId: str | None = None
    experimentId: str | None = None
    spilloverPolicies: dict[LinkType, SpilloverPolicy]
    frozen: bool
    frozenAt: str | None = None
    frozenBy: str | None = None
    version: int
    createdAt: str
    createdBy: str
    updatedAt: str


class CohortList(StrictModel):
    cohorts: list[Cohort]


class ListQuery(StrictModel):
    frozen: bool | None = None
    limit: int = Field(default=100, ge=1, le=500)


class OfferRef(StrictModel):
    """The offer a gift or referral carries: which experiment and which arm it came from."""

    experimentId: Id
    variant: Id


class SpilloverLinkIn(StrictModel):
    """One link between two units (referral, gift, shared wallet), from the app or a backend."""

    eventId: Id
    linkType: LinkType
    sourceUnitId: UnitId
    targetUnitId: UnitId
    clusterId: UnitId | None = Field(default=None, description="wallet/household id for SHARED_WALLET")
    offer: OfferRef | None = Field(default=None, description="the offer carried (gifts of a treatment offer)")
    cohortIds: list[Id] | None = Field(default=None, max_length=20, description="default: every frozen cohort")
    sourceAttributes: JsonMap | None = None
    targetAttributes: JsonMap | None = None
    occurredAt: PastTimestamp | None = None

    @model_validator(mode="after")
    def _distinct(self) -> SpilloverLinkIn:
        if self.sourceUnitId == self.targetUnitId:
            raise ValueError("a link needs two different units")
        return self


class CohortVerdict(StrictModel):
    cohortId: str
    policy: SpilloverPolicy
    crossing: bool
    action: str  # NONE | RECORDED | BLOCKED | CONTAMINATED | CLUSTERED
    contaminatedUnits: list[str] = Field(default_factory=list)
    componentSpansBoth: bool = False


class SpilloverResult(StrictModel):
    eventId: str
    duplicate: bool
    blocked: bool
    verdicts: list[CohortVerdict]


class Component(StrictModel):
    rootKey: str
    size: int
    holdoutMembers: int
    treatedMembers: int


class ComponentList(StrictModel):
    cohortId: str
    components: list[Component]


class ComponentQuery(StrictModel):
    limit: int = Field(default=100, ge=1, le=1000)


class HealthReport(StrictModel):
    cohortId: str
    status: str
    reasons: list[str]
    observedUnits: int
    holdoutSize: int
    expectedHoldoutSize: float
    srmChiSquare: float | None
    srmPValue: float | None
    contaminatedUnits: int
    contaminationRate: float
    contaminatedByLinkType: dict[str, int]
    crossings: int
    crossingsByLinkType: dict[str, int]
    blockedCrossings: int
    componentsSpanningBoth: int
