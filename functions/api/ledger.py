"""HTTP function `ledger`: verification, checkpoints, proofs, audit reports, exports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import flask
from pydantic import Field

from functions.adapters import merkle_log as ledger_log
from functions.api.router import ANY_STAFF, RequestContext, Router
from functions.core.clock import timestamp_text
from functions.core.errors import ErrorCode, Unprocessable
from functions.core.ledger import signing
from functions.models.common import Id, StrictModel, Timestamp
from functions.models.ledger import (
    AuditReport,
    ChainVerification,
    CheckpointCreated,
    CheckpointList,
    ConsistencyProof,
    InclusionProof,
    Keyring,
    LedgerHealth,
    LedgerVerification,
    PublicKey,
)
from functions.services.ledger import checkpoints, export, health, proofs, report, verification

router = Router("ledger", "Experiment ledger", "Tamper-evident audit trail with proofs, reports and exports.")
OPERATORS = frozenset({"operator"})


class InclusionQuery(StrictModel):
    chainId: Id
    seq: int = Field(ge=0, le=10**12)
    treeSize: int | None = Field(default=None, ge=1, le=10**12)


class ConsistencyQuery(StrictModel):
    first: int = Field(ge=1, le=10**12)
    second: int = Field(ge=1, le=10**12)


class ExportQuery(StrictModel):
    experimentId: Id | None = None
    format: str = Field(default="jsonl", pattern=r"^(jsonl|csv)$")
    since: Timestamp | None = Field(default=None, description="ISO 8601; entries at or after (UTC if no offset)")
    until: Timestamp | None = Field(default=None, description="ISO 8601; entries at or before")


def _ledger_time(value: datetime | None) -> str | None:
    """The ledger's own timestamp format, so the range compares like with like."""
    return None if value is None else timestamp_text(value)


@router.get("/verify", roles=ANY_STAFF, response=LedgerVerification, summary="Verify every chain and every checkpoint")
def verify_all(ctx: RequestContext) -> dict[str, Any]:
    return verification.verify_all()


@router.get("/verify/{experiment_id}", roles=ANY_STAFF, response=ChainVerification,
            summary="verifyLedgerIntegrity(experimentId)")
def verify_one(ctx: RequestContext, experiment_id: str) -> dict[str, Any]:
    return verification.verify_experiment(experiment_id)


@router.post("/checkpoints", roles=OPERATORS, response=CheckpointCreated, summary="Take a signed checkpoint now")
def create_checkpoint(ctx: RequestContext) -> dict[str, Any]:
    made = checkpoints.create_checkpoint(actor=ctx.actor)
    return {"created": made is not None, "checkpoint": made or ledger_log.latest_checkpoint()}


@router.get("/checkpoints", roles=ANY_STAFF, response=CheckpointList, summary="All checkpoints")
def list_checkpoints(ctx: RequestContext) -> dict[str, Any]:
    return {"checkpoints": ledger_log.checkpoints()}


@router.get("/public-key", public=True, response=PublicKey,
            summary="The current Ed25519 public key (see /keys for the keyring)")
def public_key(ctx: RequestContext) -> dict[str, Any]:
    key = ledger_log.signing_key()
    return {"keyId": signing.key_id(key), "publicKeyPem": signing.public_pem(key)}


@router.get("/keys", public=True, response=Keyring,
            summary="The keyring: current and retired public keys by key id")
def keys(ctx: RequestContext) -> dict[str, Any]:
    return signing.keyring_document(ledger_log.keyring(), signing.key_id(ledger_log.signing_key()))


@router.get("/health", roles=ANY_STAFF, response=LedgerHealth,
            summary="Checkpoint anchoring: newest checkpoint, its age, refusals")
def ledger_health(ctx: RequestContext) -> dict[str, Any]:
    return health.health()


@router.get("/proofs/inclusion", roles=ANY_STAFF, query=InclusionQuery, response=InclusionProof,
            summary="Inclusion proof for an entry")
def inclusion(ctx: RequestContext, query: InclusionQuery) -> dict[str, Any]:
    return proofs.inclusion(query.chainId, query.seq, query.treeSize)


@router.get("/proofs/consistency", roles=ANY_STAFF, query=ConsistencyQuery, response=ConsistencyProof,
            summary="Consistency proof")
def consistency(ctx: RequestContext, query: ConsistencyQuery) -> dict[str, Any]:
    return proofs.consistency(query.first, query.second)


@router.get("/reports/{experiment_id}", roles=ANY_STAFF, response=AuditReport, summary="Audit report (JSON)")
def audit_report(ctx: RequestContext, experiment_id: str) -> dict[str, Any]:
    return report.build(experiment_id)


@router.get("/reports/{experiment_id}/html", roles=ANY_STAFF, content_type="text/html",
            summary="Audit report (board-ready HTML)")
def audit_report_html(ctx: RequestContext, experiment_id: str) -> flask.Response:
    return flask.Response(report.render_html(report.build(experiment_id)), mimetype="text/html")


@router.get("/exports", roles=ANY_STAFF, query=ExportQuery, content_type="application/x-ndjson,text/csv",
            summary="Streamed export (JSON Lines or CSV) with the verification status in the header")
def export_entries(ctx: RequestContext, query: ExportQuery) -> flask.Response:
    since, until = _ledger_time(query.since), _ledger_time(query.until)
    if since and until and since > until:
        raise Unprocessable("since must not be after until", code=ErrorCode.BAD_RANGE,
                            details={"since": since, "until": until})
    if query.format == "csv":
        return flask.Response(export.csv_lines(query.experimentId, since, until), mimetype="text/csv",
                              headers={"X-Ledger-Verification": export.verification_header(query.experimentId)})
    return flask.Response(export.jsonl(query.experimentId, since, until), mimetype="application/x-ndjson")
