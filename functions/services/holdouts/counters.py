"""Sharded health counters per cohort.

Many spillover events and first sightings land on one cohort; one counter document would be a
hot document (about 1 write/s). Each increment picks a random shard inside the caller's
transaction, and the health report sums the few shards instead of scanning units.
"""

from __future__ import annotations

import random
from typing import Any

from functions.adapters.repositories import holdouts as storage
from functions.adapters.unit_of_work import UnitOfWork

SHARDS = 8

OBSERVED = "observed"  # eligible units seen by assign
HOLDOUT = "holdout"  # of those, in the holdout
CONTAMINATED = "contaminated"  # holdout members reached by treatment (EXCLUDE / CLUSTER moves)
CROSSINGS = "crossings"  # links between the two sides, any policy
BLOCKED = "blocked"  # crossings refused under BLOCK
SPANNING = "spanning"  # connected components holding units from both sides


def by_link(field: str, link_type: str) -> str:
    return f"{field}_{link_type}"


def shard() -> int:
    """A random shard: concurrent increments rarely share a document."""
    return random.randrange(SHARDS)


def increment(uow: UnitOfWork, cohort_id: str, deltas: dict[str, int], shard_index: int | None = None) -> None:
    deltas = {k: v for k, v in deltas.items() if v}
    if not deltas:
        return
    uow.links.increment_counters(cohort_id, shard() if shard_index is None else shard_index, deltas)


def totals(cohort_id: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for doc in storage.counter_shards(cohort_id):
        for k, v in doc.items():
            if isinstance(v, int | float):
                out[k] = out.get(k, 0) + int(v)
    return out


def zero_fields(doc: dict[str, Any], prefix: str) -> dict[str, int]:
    return {k[len(prefix) + 1 :]: int(v) for k, v in doc.items() if k.startswith(prefix + "_") and v}
