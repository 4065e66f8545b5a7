"""Pub/Sub handler for spillover link events (spillover-events topic), owned by the holdouts module.

Same service function as the HTTP route; a BLOCK verdict is recorded (the app already got its
409 over HTTP, or the event is an after-the-fact report), so it is not an error here.
"""

from __future__ import annotations

from functions.adapters.auth import SYSTEM
from functions.events.delivery import EventContext, pubsub_handler
from functions.models.holdouts import SpilloverLinkIn
from functions.services.holdouts import spillover


@pubsub_handler(SpilloverLinkIn)
def handle(ctx: EventContext, link: SpilloverLinkIn) -> str:
    result = spillover.ingest(link, {"uid": "pubsub:spillover-events", "role": SYSTEM.primary_role})
    actions = ",".join(f"{v.cohortId}:{v.action}" for v in result.verdicts)
    return f"duplicate={result.duplicate} {actions}"
