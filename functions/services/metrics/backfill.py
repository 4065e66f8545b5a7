"""Backfill of the metric store's `links` table from the spillover links Firestore recorded.

Links land in the metric store as they are ingested (`landing.land_links`), so a store that
started after links were recorded (a project that ran before the warehouse move, a switch of
METRIC_STORE or METRIC_DATASET, a lost local store file) misses them, and analyses stop leaving
out units linked across arms. The backfill lands, per frozen cohort, every recorded link the
store lacks, with the ids the live path gives it (`link_event_id`), so a row the live path
landed is never landed again and a second run lands nothing. Rows are appended directly, not
through the landing topics, so the check and the append see the same store. Run one at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from functions.adapters.metric_store import MetricStore, schema, store
from functions.core.clock import utc_now
from functions.services.holdouts import links as holdout_links
from functions.services.metrics.landing import link_row

BATCH_ROWS = 5000


@dataclass
class BackfillResult:
    cohorts: int = 0
    recorded: int = 0  # (link, cohort) pairs Firestore holds, refused links left out
    already_landed: int = 0
    landed: int = 0
    per_cohort: dict[str, int] = field(default_factory=dict)  # rows landed now, per cohort

    def to_dict(self) -> dict[str, object]:
        return {"cohorts": self.cohorts, "recorded": self.recorded, "alreadyLanded": self.already_landed,
                "landed": self.landed, "perCohort": self.per_cohort}


def landed_ids(cohort_id: str, target: MetricStore | None = None) -> set[str]:
    """The `event_id`s of the cohort's rows already in the store (duplicates once)."""
    sql = f"SELECT DISTINCT event_id FROM {schema.LINKS} WHERE cohort_id = @cohort_id"
    return {str(r["event_id"]) for r in (target or store()).query(sql, {"cohort_id": cohort_id})}


def backfill_links(cohort_ids: list[str] | None = None) -> BackfillResult:
    """Land every recorded link of the given (default: every frozen) cohort that the store lacks."""
    result = BackfillResult()
    now = utc_now()
    for cohort_id in cohort_ids if cohort_ids is not None else holdout_links.linked_cohorts():
        result.cohorts += 1
        have = landed_ids(cohort_id)
        rows = [link_row(link.event_id, cohort_id, link.source_unit_id, link.target_unit_id, link.link_type,
                         link.occurred_at, now) for link in holdout_links.recorded_links(cohort_id)]
        missing = [row for row in rows if row["event_id"] not in have]
        result.recorded += len(rows)
        result.already_landed += len(rows) - len(missing)
        for start in range(0, len(missing), BATCH_ROWS):
            result.landed += store().append(schema.LINKS, missing[start:start + BATCH_ROWS])
        if missing:
            result.per_cohort[cohort_id] = len(missing)
    return result
