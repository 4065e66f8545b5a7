"""Exposed units keep their arm when clustering would move them.

A CLUSTER link (a shared wallet, or a referral or gift under that policy) gives both units one
randomisation id, so a unit can hash to another arm, or to the other side of a holdout, than the
one it was already shown. A user who saw one price must keep seeing it: for a clustered unit,
every experiment it has a first exposure for (the exposure log, `holdoutAssignments`) answers
that exposure's arm again. Units never exposed take the cluster's arm, which is the point of
clustering. Deliberate, recorded changes are not overridden: a rollback or abort (ROLLED_BACK,
its band in the ledger), a pause, a region restriction or targeting the unit no longer meets.

Only units with a cluster override pay for this: one batched read of their exposure records.
"""

from __future__ import annotations

from typing import Any

from functions.adapters.holdout_keys import assignment_id
from functions.adapters.repositories import holdouts as storage
from functions.adapters.repositories.holdouts import RecordedArm

# outcomes of hashing, which a cluster id can change; every other status is a deliberate decision
REHASHED = frozenset({"ASSIGNED", "HOLDOUT", "NOT_EXPOSED", "LAYER_EXCLUDED"})


def _arm(record: RecordedArm) -> dict[str, Any] | None:
    if record.get("status") == "HOLDOUT":
        return {"status": "HOLDOUT", "variant": None, "exposed": False}
    if record.get("status", "ASSIGNED") == "ASSIGNED" and record.get("variant"):
        return {"status": "ASSIGNED", "variant": record["variant"], "exposed": True}
    return None


def clustered(unit_ids: list[str], overrides: dict[str, dict[str, str]]) -> list[int]:
    """Positions of the units some cohort randomises by a cluster id."""
    ids = {u for by_unit in overrides.values() for u in by_unit}
    return [i for i, u in enumerate(unit_ids) if u in ids]


def _same(decision: dict[str, Any], arm: dict[str, Any]) -> bool:
    return (decision["status"], decision["variant"]) == (arm["status"], arm["variant"])


def keep_exposed_arms(unit_ids: list[str], decisions: list[dict[str, Any]], own: dict[int, dict[str, Any]]) -> int:
    """Put back the first-exposure arm of clustered units (in place); returns how many were kept.

    `own` holds each clustered unit's decision (by position) by its own id, without the cluster
    override: when the cluster would move an exposed unit, its own decision still says whether
    its arm is live (rolled back, paused); failing that, the recorded arm is answered."""
    pairs = [(eid, unit_ids[i]) for i in own for eid in decisions[i]["experiments"]]
    if not pairs:
        return 0
    records = storage.recorded_arms(pairs)
    kept = 0
    for i, mine in own.items():
        unit, d = unit_ids[i], decisions[i]
        for eid, current in d["experiments"].items():
            record = records.get(assignment_id(eid, unit))
            arm = _arm(record) if record else None
            if arm is None or current["status"] not in REHASHED or _same(current, arm):
                continue
            alone = mine["experiments"].get(eid)
            d["experiments"][eid] = alone if alone and alone["status"] not in REHASHED else arm
            kept += 1
    return kept
