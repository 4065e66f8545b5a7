"""Local stand-in for Eventarc's Firestore trigger: a snapshot listener on the watched
collections posts a binary-mode CloudEvent to the function for every document write."""

from __future__ import annotations

import logging
import queue
import threading

import requests

from functions.adapters.firestore import db
from functions.config import settings
from functions.core.clock import utc_now
from functions.core.ids import random_hex
from functions.triggers import FIRESTORE_FUNCTIONS

log = logging.getLogger(__name__)
EVENT_TYPE = "google.cloud.firestore.document.v1.written"


class FirestoreBridge:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.queue: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self.watches: list = []
        self.worker = threading.Thread(target=self._deliver, name="firestore-bridge", daemon=True)

    def start(self) -> FirestoreBridge:
        self.worker.start()
        for function, (collection, _pattern) in FIRESTORE_FUNCTIONS.items():
            def on_snapshot(_docs, changes, _read_time, function=function, collection=collection):
                for change in changes:
                    self.queue.put((function, f"{collection}/{change.document.id}"))

            self.watches.append(db().collection(collection).on_snapshot(on_snapshot))
        return self

    def _deliver(self) -> None:
        while (item := self.queue.get()) is not None:
            function, path = item
            headers = {
                "ce-id": random_hex(),
                "ce-specversion": "1.0",
                "ce-type": EVENT_TYPE,
                "ce-source": f"//firestore.googleapis.com/projects/{settings().project_id}/databases/(default)",
                "ce-subject": f"documents/{path}",
                "ce-time": utc_now().isoformat(),
                "Content-Type": "application/json",
            }
            try:
                requests.post(f"{self.base_url}/{function}/", data=b"{}", headers=headers, timeout=30)
            except requests.RequestException:
                log.exception("firestore bridge delivery failed")

    def stop(self) -> None:
        for watch in self.watches:
            watch.unsubscribe()
        self.queue.put(None)
