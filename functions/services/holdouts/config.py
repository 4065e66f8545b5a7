"""The assignment configuration the hot path decides with, compiled once and cached per process.

Frozen cohorts and RUNNING/PAUSED experiments are read and compiled into the pure core's
config dataclasses at most every `config_cache_seconds`; in between, `assign` reads nothing
from Firestore except sticky cluster overrides. A PAUSED experiment stays in the config (so
its units keep their recorded status) but exposes nobody.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from functions.adapters.repositories.cohorts import CohortDoc
from functions.adapters.repositories.experiments import ExperimentDoc
from functions.adapters.unit_of_work import reading
from functions.config import settings
from functions.core.ids import short_digest
from functions.models.holdouts import SpilloverPolicy, UnitType
from functions.services.holdouts import corebridge


@dataclass(frozen=True)
class Snapshot:
    version: str
    cohorts: dict[str, CohortDoc]
    experiments: dict[str, ExperimentDoc]
    compiled: Any
    cluster_cohorts: tuple[str, ...]
    loaded_at: float = field(default=0.0)


def needs_cluster_lookup(cohort: CohortDoc) -> bool:
    """Wallet cohorts and CLUSTER policies randomise by cluster id: the one read assign makes."""
    policies = (cohort.get("spilloverPolicies") or {}).values()
    return cohort.get("unitType") == UnitType.WALLET or SpilloverPolicy.CLUSTER in policies


def _version(cohorts: dict[str, Any], experiments: dict[str, Any]) -> str:
    blob = json.dumps({"c": cohorts, "e": experiments}, sort_keys=True, default=str)
    return short_digest(blob, 16)


def load() -> Snapshot:
    stored = reading()
    cohort_docs = dict(stored.cohorts.all(frozen=True))
    experiment_docs = stored.experiments.live()
    compiled = corebridge.compile_config(cohort_docs, experiment_docs)
    return Snapshot(
        version=_version(cohort_docs, experiment_docs),
        cohorts=cohort_docs,
        experiments=experiment_docs,
        compiled=compiled,
        cluster_cohorts=tuple(sorted(cid for cid, doc in cohort_docs.items() if needs_cluster_lookup(doc))),
        loaded_at=time.monotonic(),
    )


_lock = threading.Lock()
_snapshot: Snapshot | None = None


def current() -> Snapshot:
    """The cached snapshot; one thread refreshes it when stale, the others keep deciding."""
    global _snapshot
    snap = _snapshot
    ttl = settings().config_cache_seconds
    if snap is not None and time.monotonic() - snap.loaded_at < ttl:
        return snap
    with _lock:
        snap = _snapshot
        if snap is None or time.monotonic() - snap.loaded_at >= ttl:
            snap = _snapshot = load()
        return snap


def invalidate() -> None:
    global _snapshot
    with _lock:
        _snapshot = None
