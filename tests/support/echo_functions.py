"""A tiny function source used to test the event plumbing itself through functions-framework:
each delivery increments a counter document exactly once per event id."""

import functions_framework

from functions.adapters import idempotency
from functions.adapters.firestore import db, transactional
from functions.events.delivery import EventContext, pubsub_handler
from functions.models.common import StrictModel


class Ping(StrictModel):
    eventId: str | None = None
    amount: int = 1


@pubsub_handler(Ping)
def _count(ctx: EventContext, ping: Ping) -> str:
    counter = db().collection("testCounters").document("pings")

    @transactional
    def apply(txn) -> str:
        if idempotency.already_processed(txn, counter, ctx.event_id):
            return "duplicate"
        snap = counter.get(transaction=txn)
        total = (snap.to_dict() or {}).get("total", 0) if snap.exists else 0
        txn.set(counter, {"total": total + ping.amount})
        idempotency.mark_processed(txn, counter, ctx.event_id)
        return "applied"

    return apply(db().transaction())


@functions_framework.cloud_event
def count_pings(cloud_event):
    _count(cloud_event)
