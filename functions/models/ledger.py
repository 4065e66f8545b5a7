"""Answers of the ledger API: verifications, checkpoints, proofs, keys, the audit report
(built from services/ledger: verification, checkpoints, proofs, health, report)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from functions.models.common import StrictModel


class ChainVerdictOut(StrictModel):
    ok: bool
    chainId: str
    length: int
    firstBadIndex: int | None
    damage: str | None
    detail: str
    headHash: str | None


class CheckpointProblem(StrictModel):
    damage: str
    treeSize: int | None
    number: int | None
    detail: str


class CheckpointSummary(StrictModel):
    number: int | None
    treeSize: int | None
    rootHash: str | None
    at: str | None
    keyId: str | None


class LedgerVerification(StrictModel):
    ok: bool
    chains: int
    entries: int
    damaged: list[ChainVerdictOut]
    checkpointProblems: list[CheckpointProblem]
    checkpoint: CheckpointSummary | None


class ChainVerification(ChainVerdictOut):
    """One chain's verdict, with the checkpoint it was checked against (its problems fail it too)."""

    checkpoint: CheckpointSummary | None
    checkpointProblems: list[CheckpointProblem]


class SignedCheckpoint(StrictModel):
    """The fields the signature covers (signing.SIGNED_FIELDS)."""

    format: str | None
    number: int | None
    treeSize: int
    rootHash: str
    at: str
    previousSize: int | None
    previousRoot: str | None
    headsRoot: str | None
    keyId: str | None


class Checkpoint(SignedCheckpoint):
    signature: str
    chainHeads: dict[str, list[int | str]] = Field(description="chain id -> [last seq, last hash]")
    createdBy: dict[str, str]


class CheckpointCreated(StrictModel):
    created: bool
    checkpoint: Checkpoint | None = Field(description="the new checkpoint, or the latest when nothing was new")


class CheckpointList(StrictModel):
    checkpoints: list[Checkpoint]


class PublicKey(StrictModel):
    keyId: str
    publicKeyPem: str


class KeyOut(PublicKey):
    status: str = Field(description="current or retired")


class Keyring(StrictModel):
    current: str | None
    keys: list[KeyOut]


class Refusal(StrictModel):
    """A checkpoint the ledger refused to sign: the damaged chains or the checkpoint problems it found."""

    problems: list[ChainVerdictOut | CheckpointProblem] | None
    firstSeenAt: str | None
    lastSeenAt: str | None
    count: int | None


class LedgerHealth(StrictModel):
    status: str = Field(description="OK, STALE, REFUSING or DAMAGED")
    checkpoint: CheckpointSummary | None
    checkpointAgeSeconds: float | None
    anchorProblems: list[CheckpointProblem]
    refusals: list[Refusal]


class ProofEntry(StrictModel):
    chainId: str | None
    seq: int | None
    hash: str | None
    canonical: str | None


class InclusionProof(StrictModel):
    format: str
    checkpoint: SignedCheckpoint
    signature: str
    entryHash: str
    index: int
    entry: ProofEntry | None
    path: list[str]


class ConsistencyProof(StrictModel):
    format: str
    first: SignedCheckpoint
    firstSignature: str
    second: SignedCheckpoint
    secondSignature: str
    path: list[str]


class TimelineRow(StrictModel):
    seq: int
    at: str
    action: str
    actor: dict[str, str]
    reason: str | None
    verified: bool


class ApprovalRow(TimelineRow):
    contentHash: str | None
    comment: str | None


class RolloutPathRow(StrictModel):
    at: str | None
    from_: float | None = Field(alias="from")
    to: float | None
    kind: str | None
    actor: dict[str, str] | None
    reason: str | None


class FinalArm(StrictModel):
    """One arm's primary estimate, decision and the sentence a board reads."""

    arm: str
    method: str | None
    lift: float | None
    liftCi: list[float | None] | None
    diff: float | None
    diffCi: list[float | None] | None
    pValue: float | None
    decision: str | None
    trust: str | None
    reasons: list[str]
    sentence: str


class FinalKpi(StrictModel):
    metric: str
    role: str | None
    type: str | None
    arms: list[FinalArm]


class FinalAnalysis(StrictModel):
    id: str | None
    createdAt: Any = Field(description="UTC time the analysis was published (`Z`)")
    recommendation: dict[str, Any] | None
    guardrailsHeld: bool
    kpis: list[FinalKpi] = Field(description="per KPI (primary first) and arm, in words and numbers")


class Deviation(StrictModel):
    registered: str
    current: str
    message: str


class PreRegistration(StrictModel):
    planHash: str | None
    deviations: list[Deviation]


class AuditReport(StrictModel):
    experimentId: str
    name: str | None
    state: str | None
    hypothesis: dict[str, Any] | None
    author: str | None
    timeline: list[TimelineRow]
    approvals: list[ApprovalRow]
    guardrailActions: list[dict[str, Any]] = Field(description="each guardrail act with its stored details")
    approvedContentHash: str | None
    rolloutPath: list[RolloutPathRow]
    finalAnalysis: FinalAnalysis | None
    preRegistration: PreRegistration
    integrity: ChainVerification
