"""Firestore trigger on `offerExperiments/{id}` writes.

Every state change commits its announcements (state change, kill switch) to the experiment's
outbox in the same transaction; this reaction publishes them. It re-reads the outbox rather
than trusting the event payload, so duplicate or reordered trigger deliveries publish nothing
twice, and the sweep's `flush_all` catches anything a failed trigger left behind.
"""

from __future__ import annotations

import logging
from typing import Any

from functions.adapters.firestore import OFFER_EXPERIMENTS
from functions.adapters.repositories import experiments, outbox
from functions.events.delivery import firestore_document_path

log = logging.getLogger(__name__)


def handle(cloud_event: Any) -> int:
    path = firestore_document_path(cloud_event)
    parts = path.split("/")
    if len(parts) != 2 or parts[0] != OFFER_EXPERIMENTS or not parts[1]:
        log.warning("ignored trigger for unexpected document", extra={"json_fields": {"path": path}})
        return 0
    sent = outbox.flush(experiments.path(parts[1]))
    log.info("experiment outbox flushed", extra={"json_fields": {"experimentId": parts[1], "published": sent}})
    return sent
