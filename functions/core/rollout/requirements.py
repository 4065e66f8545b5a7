"""What a stage must show before the next one: evaluated from plain values so the table-driven
tests and the health route share one definition of "ready"."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from functions.core.stats.quality import SRM_ALPHA, srm

MIN_TIME = "MIN_TIME_AT_STAGE"
MIN_UNITS = "MIN_UNITS_PER_ARM"
GUARDRAILS = "NO_GUARDRAIL_VIOLATION"
SRM = "SRM"
DATA_QUALITY = "DATA_QUALITY"
MANUAL_APPROVAL = "MANUAL_APPROVAL"
UNTRUSTWORTHY = "UNTRUSTWORTHY"


@dataclass(frozen=True)
class StageRequirements:
    min_time_seconds: float = 24 * 3600.0
    min_units_per_arm: int = 100
    no_guardrail_violation: bool = True
    srm_pass: bool = True
    data_quality: bool = True
    manual_approval: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"minTimeAtStageSeconds": self.min_time_seconds, "minUnitsPerArm": self.min_units_per_arm,
                "noGuardrailViolation": self.no_guardrail_violation, "srmPass": self.srm_pass,
                "dataQuality": self.data_quality, "manualApproval": self.manual_approval}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> StageRequirements:
        return cls(float(raw.get("minTimeAtStageSeconds", 86400.0)), int(raw.get("minUnitsPerArm", 100)),
                   bool(raw.get("noGuardrailViolation", True)), bool(raw.get("srmPass", True)),
                   bool(raw.get("dataQuality", True)), bool(raw.get("manualApproval", False)))


@dataclass(frozen=True)
class StageInputs:
    """Everything the requirements look at, already read by the service's adapter."""

    now: datetime
    entered_at: datetime
    exposures: Mapping[str, int]  # cumulative first exposures per arm
    exposures_since_entry: Mapping[str, int]  # first exposures since this stage began (SRM)
    expected_split: Mapping[str, float]  # expected arm shares at this stage (assignment core)
    guardrails: Sequence[Mapping[str, Any]] | None  # latest snapshot verdicts; None = no snapshot at this stage
    data_quality: str | None = None  # TRUSTWORTHY | CAUTION | UNTRUSTWORTHY | None (no analysis yet)
    approved: bool = False


@dataclass(frozen=True)
class RequirementResult:
    name: str
    passed: bool
    value: Any
    threshold: Any
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "value": self.value, "threshold": self.threshold,
                "detail": self.detail, **({"extra": self.extra} if self.extra else {})}


def _time(req: StageRequirements, inp: StageInputs) -> RequirementResult:
    elapsed = max(0.0, (inp.now - inp.entered_at).total_seconds())
    ok = elapsed >= req.min_time_seconds
    return RequirementResult(MIN_TIME, ok, elapsed, req.min_time_seconds,
                             "" if ok else f"{req.min_time_seconds - elapsed:.0f}s to go")


def _units(req: StageRequirements, inp: StageInputs) -> RequirementResult:
    arms = [a for a, share in inp.expected_split.items() if share > 0]
    counts = {a: int(inp.exposures.get(a, 0)) for a in arms}
    low = {a: n for a, n in counts.items() if n < req.min_units_per_arm}
    return RequirementResult(MIN_UNITS, not low, counts, req.min_units_per_arm,
                             f"below minimum: {sorted(low)}" if low else "")


def _guardrails(inp: StageInputs) -> RequirementResult:
    if inp.guardrails is None:
        return RequirementResult(GUARDRAILS, False, None, 0, "no guardrail snapshot taken at this stage yet")
    breached = [{"guardrail": v.get("guardrail"), "arm": v.get("arm"), "action": v.get("action")}
                for v in inp.guardrails if v.get("status") == "BREACHED"]
    return RequirementResult(GUARDRAILS, not breached, len(breached), 0,
                             "breached: " + ", ".join(f"{b['guardrail']}@{b['arm']}" for b in breached)
                             if breached else "", {"breached": breached} if breached else {})


def _srm(inp: StageInputs) -> RequirementResult:
    check = srm(inp.exposures_since_entry, inp.expected_split)
    # Too little data to test is not a mismatch; the minimum-units requirement covers sample size.
    return RequirementResult(SRM, not check.failed, check.p_value, SRM_ALPHA,
                             "sample ratio mismatch against this stage's expected split" if check.failed
                             else check.status, {"status": check.status, "expectedSplit": dict(inp.expected_split),
                                                 "observed": dict(inp.exposures_since_entry)})


def _quality(inp: StageInputs) -> RequirementResult:
    ok = inp.data_quality != UNTRUSTWORTHY
    return RequirementResult(DATA_QUALITY, ok, inp.data_quality, f"not {UNTRUSTWORTHY}",
                             "" if ok else "latest analysis is UNTRUSTWORTHY")


def _approval(inp: StageInputs) -> RequirementResult:
    return RequirementResult(MANUAL_APPROVAL, inp.approved, inp.approved, True,
                             "" if inp.approved else "this stage needs a manual approval to advance")


def evaluate(req: StageRequirements, inp: StageInputs) -> list[RequirementResult]:
    """Every enabled requirement with its current value; disabled ones are not listed."""
    results = [_time(req, inp), _units(req, inp)]
    if req.no_guardrail_violation:
        results.append(_guardrails(inp))
    if req.srm_pass:
        results.append(_srm(inp))
    if req.data_quality:
        results.append(_quality(inp))
    if req.manual_approval:
        results.append(_approval(inp))
    return results


def blocking(results: Sequence[RequirementResult], ignore: frozenset[str] = frozenset()) -> list[RequirementResult]:
    return [r for r in results if not r.passed and r.name not in ignore]


def kill_breach(guardrails: Sequence[Mapping[str, Any]] | None) -> Mapping[str, Any] | None:
    """A breached guardrail whose action is KILL: the rollout must abort, not merely hold."""
    for verdict in guardrails or ():
        if verdict.get("status") == "BREACHED" and verdict.get("action") == "KILL":
            return verdict
    return None
