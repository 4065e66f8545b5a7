"""Which exposed units an analysis reads, and in which arm, now that each distinct decision
(status, variant) is numbered before the per-unit aggregate: the awkward exposure rows on both
engines, checked against what the exposure log says by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from functions.adapters.metric_store import queries
from functions.adapters.metric_store.schema import EXPOSURES

T0 = datetime(2026, 11, 1, tzinfo=UTC)
ARMS = ["control", "treatment", "holdout"]


def _row(event_id: str, unit: str, status: str, variant: str | None, *, consent: bool = True, minutes: int = 0,
         landed: int = 0, experiment: str = "exp-d") -> dict:
    return {"event_id": event_id, "experiment_id": experiment, "unit_id": unit, "status": status, "variant": variant,
            "analytics_consent": consent, "exposed_at": T0 + timedelta(minutes=minutes),
            "received_at": T0 + timedelta(minutes=landed)}


ROWS = [
    _row("a1", "plain", "ASSIGNED", "control", minutes=20),
    _row("h1", "held", "HOLDOUT", None),
    # the same decision exposed again later (its own id): the first exposure counts, consent of both
    _row("r1", "again", "ASSIGNED", "treatment", minutes=5),
    _row("r2", "again", "ASSIGNED", "treatment", minutes=2, consent=False),
    # redelivered with the same id but other content: only the first landed row counts
    _row("d1", "redelivered", "ASSIGNED", "control", minutes=9, landed=1),
    _row("d1", "redelivered", "ASSIGNED", "control", minutes=1, consent=False, landed=3),
    _row("t1", "two-arms", "ASSIGNED", "control"),
    _row("t2", "two-arms", "ASSIGNED", "treatment"),
    _row("s1", "two-statuses", "ASSIGNED", "control"),
    _row("s2", "two-statuses", "HOLDOUT", "control"),
    _row("x1", "excluded", "EXCLUDED", "control"),  # a status analysis never reads
    _row("n1", "no-variant", "ASSIGNED", None),
    _row("e1", "empty-variant", "ASSIGNED", ""),
    _row("m1", "mixed-empty", "ASSIGNED", None),
    _row("m2", "mixed-empty", "ASSIGNED", ""),
    _row("o1", "other-experiment", "ASSIGNED", "control", experiment="exp-other"),
    _row("o2", "plain", "ASSIGNED", "treatment", experiment="exp-other"),  # another experiment's decision
]


def test_each_unit_gets_its_one_arm_and_units_with_two_decisions_or_no_arm_are_left_out(store):
    store.append(EXPOSURES, ROWS)
    units = ["plain", "held", "again", "redelivered", "two-arms", "two-statuses", "excluded", "no-variant",
             "empty-variant", "mixed-empty", "other-experiment", "nobody"]
    rows = store.query(queries.arms_of(), {"experiment_id": "exp-d", "arms": ARMS, "left_out": [], "units": units})
    assert {r["unit_id"]: r["arm"] for r in rows} == {"plain": "control", "held": "holdout", "again": "treatment",
                                                     "redelivered": "control"}
    left_out = store.query(queries.arms_of(), {"experiment_id": "exp-d", "arms": ARMS, "left_out": ["plain"],
                                               "units": units})
    assert "plain" not in {r["unit_id"] for r in left_out}


def test_population_counts_first_exposure_and_consent_from_the_first_landed_row(store):
    store.append(EXPOSURES, ROWS)
    rows = store.query(queries.population(), {"experiment_id": "exp-d", "arms": ARMS, "left_out": [],
                                              "activity_metrics": ["revenue"]})
    facts = {(r["arm"], r["name"]): r["n"] for r in rows}
    assert {arm for arm, _ in facts} == {"control", "treatment", "holdout"}
    assert facts[("control", "units")] == 2 and facts[("treatment", "units")] == 1 and facts[("holdout", "units")] == 1
    # "redelivered": its first landed row (exposed at +9 min, consenting) wins over the later one
    assert facts[("control", "consenting")] == 2
    assert facts[("control", "first_exposed")] == _micros(T0 + timedelta(minutes=9))
    # "again": two exposures of one decision, the earliest counts and consent needs both
    assert facts[("treatment", "consenting")] == 0
    assert facts[("treatment", "first_exposed")] == _micros(T0 + timedelta(minutes=2))


def _micros(at: datetime) -> int:
    return (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
