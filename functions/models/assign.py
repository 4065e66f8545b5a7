"""Schemas of the assign hot path and of the exposure messages it publishes."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from functions.models.common import StrictModel, UnitId

MAX_BATCH_UNITS = 10_000



class UnitIn(StrictModel):
    unitId: UnitId
    # Evaluated by targeting rules, never stored, so not held to the storable-value checks
    # (JsonMap): on the hot path they would cost 18x the validation time of a 10,000-unit batch.
    attributes: dict[str, Any] = Field(default_factory=dict)


class AssignRequest(UnitIn):
    pass


class AssignBatchRequest(StrictModel):
    units: list[UnitIn] = Field(min_length=1, max_length=MAX_BATCH_UNITS)


class ExperimentDecisionOut(StrictModel):
    status: str
    variant: str | None
    exposed: bool


class UnitDecisionOut(StrictModel):
    unitId: str
    inHoldout: bool
    holdoutCohorts: list[str]
    experiments: dict[str, ExperimentDecisionOut]


class AssignBatchResponse(StrictModel):
    results: list[UnitDecisionOut]
    configVersion: str


class ExposureRow(StrictModel):
    """One first-exposure candidate; the handler creates its document only if absent."""

    unitId: UnitId
    experimentId: str
    variant: str | None
    inHoldout: bool
    status: str
    analyticsConsent: bool = Field(default=True, description="false: the unit is never analysed")


class CohortSighting(StrictModel):
    """A unit seen by assign for a cohort it is eligible for (drives cohort size counters)."""

    cohortId: str
    unitId: UnitId
    inHoldout: bool


class ExposureMessage(StrictModel):
    eventId: str
    at: str
    rows: list[ExposureRow] = Field(default_factory=list)
    sightings: list[CohortSighting] = Field(default_factory=list)
