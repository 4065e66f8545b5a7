"""Fraud flags per unit, applied retroactively: the next analysis excludes the unit, earlier
analyses stay as they were published (they are immutable). Flags land in the metric store,
where analyses join them; a redelivered signal lands again and counts once (by event id)."""

from __future__ import annotations

from collections.abc import Iterable

from functions.models.analytics import FraudSignal
from functions.services.metrics.landing import land_fraud_flags


def record(signals: Iterable[FraudSignal]) -> int:
    return land_fraud_flags(signals)
