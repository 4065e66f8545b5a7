"""Which event source triggers which entry point of main.py.

One table for the local router (push subscriptions, ticker, Firestore bridge), deploy.sh
(checked by a test) and the README.
"""

from __future__ import annotations

# JSON APIs (each serves its OpenAPI document) and the web console (HTML pages over those APIs).
API_FUNCTIONS = ("holdouts", "experiments", "analytics", "rollouts", "ledger", "assign")
HTTP_FUNCTIONS = (*API_FUNCTIONS, "console")

# entry point -> topic key in functions.config.Topics
PUBSUB_FUNCTIONS = {
    "kpi_events": "kpi_events",
    "fraud_signals": "fraud_signals",
    "spillover_events": "spillover_events",
    "exposures": "exposures",
    "sweep": "sweep_ticks",
}

# entry point -> (collection, document pattern) for google.cloud.firestore.document.v1.written
FIRESTORE_FUNCTIONS = {
    "experiment_written": ("offerExperiments", "offerExperiments/{experimentId}"),
}

# Outbound topics nobody in this project subscribes to by default (apps and auditors do).
OUTBOUND_TOPICS = ("kill_switch", "experiment_state", "ledger_checkpoints", "quarantine")

SWEEP_SCHEDULE = "*/5 * * * *"

# A message a Pub/Sub function failed this many times moves to the `dead-letter` topic (deploy.sh
# and the local push subscriptions; Pub/Sub accepts 5 to 100).
DEAD_LETTER_AFTER_ATTEMPTS = 10
