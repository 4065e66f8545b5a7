"""The `links` backfill on the real Firestore emulator and the embedded metric store: a store that
starts after links were recorded (a project switching to the warehouse, a new dataset) gets each
recorded link once per cohort, refused links never, and a second run (or a link the live path
landed meanwhile) adds nothing, so analyses find the crossings they found before."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from functions.adapters.metric_store import reset_store, store
from functions.models.holdouts import SpilloverLinkIn
from functions.services.holdouts import cohorts, corebridge, spillover
from functions.services.holdouts.exposures import record_exposures
from functions.services.metrics.analysis_inputs import crossing_units
from functions.services.metrics.backfill import backfill_links
from localdev.backfill_links import main as backfill_command
from tests.support.factories import frozen_cohort, running_experiment

ACTOR = {"uid": "svc-1", "role": "service"}
WHEN = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def rows() -> tuple[int, int, list[tuple[str, str, str]]]:
    """(rows in the table, distinct event ids, (link event, cohort, source) per distinct row)."""
    raw = store().query("SELECT COUNT(*) AS n, COUNT(DISTINCT event_id) AS d FROM links")[0]
    seen = store().query("SELECT DISTINCT link_event_id, cohort_id, source_unit_id FROM links "
                         "ORDER BY link_event_id, cohort_id")
    return int(raw["n"]), int(raw["d"]), [(r["link_event_id"], r["cohort_id"], r["source_unit_id"]) for r in seen]


def _outside(cid: str, n: int) -> list[str]:
    cohort = cohorts.get(cid).model_dump(mode="json")
    return [u for u in (f"user-{i}" for i in range(400)) if not corebridge.cohort_member(cohort, u, None)][:n]


def _held(cid: str) -> str:
    cohort = cohorts.get(cid).model_dump(mode="json")
    return next(u for u in (f"user-{i}" for i in range(400)) if corebridge.cohort_member(cohort, u, None))


def test_backfill_lands_each_recorded_link_once_per_cohort_even_when_run_twice(capsys):
    a, b = frozen_cohort(percentage=20.0), frozen_cohort(percentage=20.0)
    out = [u for u in _outside(a, 40) if u in set(_outside(b, 40))][:6]
    both = SpilloverLinkIn(eventId="r1", linkType="REFERRAL", sourceUnitId=out[0], targetUnitId=out[1],
                           cohortIds=[a, b], occurredAt=WHEN)
    only_a = SpilloverLinkIn(eventId="r2", linkType="REFERRAL", sourceUnitId=out[2], targetUnitId=out[3],
                             cohortIds=[a])  # no occurredAt: the record's time stands in
    refused = SpilloverLinkIn(eventId="g1", linkType="GIFT", sourceUnitId=out[4], targetUnitId=_held(a),
                              cohortIds=[a])
    for link in (both, only_a, both):  # r1 delivered twice
        spillover.ingest(link, ACTOR)
    assert spillover.ingest(refused, ACTOR).blocked
    landed_live = rows()
    assert landed_live[0] == 5 and landed_live[1] == 3  # r1 twice in two cohorts, r2 once

    reset_store()  # the store the deploy switches to: empty, while Firestore keeps every record
    assert rows() == (0, 0, [])
    first = backfill_links()
    expected = sorted([("r1", a, out[0]), ("r1", b, out[0]), ("r2", a, out[2])])
    assert (first.landed, first.already_landed, first.recorded) == (3, 0, 3)
    assert rows() == (3, 3, expected)
    assert rows()[2] == landed_live[2]  # the same rows (same ids) the live path gave
    times = {r["link_event_id"]: r["occurred_at"] for r in store().query("SELECT * FROM links")}
    assert times["r1"].astimezone(UTC) == WHEN and times["r2"].astimezone(UTC) > WHEN

    assert backfill_command([]) == 0  # the command, run a second time, lands nothing
    second = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (second["landed"], second["alreadyLanded"], second["recorded"]) == (0, 3, 3)
    assert rows() == (3, 3, expected)


def test_backfill_skips_what_the_live_path_landed_and_restores_the_crossings():
    cid = frozen_cohort(percentage=20.0)
    out = _outside(cid, 4)
    for i, (source, target) in enumerate([(out[0], out[1]), (out[2], out[3])]):
        spillover.ingest(SpilloverLinkIn(eventId=f"r{i}", linkType="REFERRAL", sourceUnitId=source,
                                         targetUnitId=target, cohortIds=[cid]), ACTOR)
    eid = running_experiment(cid)
    arms = {out[0]: "control", out[1]: "treatment", out[2]: "control", out[3]: "control"}
    record_exposures([{"unitId": u, "experimentId": eid, "variant": v, "inHoldout": False, "status": "ASSIGNED"}
                      for u, v in arms.items()], datetime.now(UTC) - timedelta(hours=1))
    arms_of = ("control", "treatment", "holdout")
    assert crossing_units(eid, cid, arms_of) == {out[0], out[1]}

    exposures = store().query("SELECT * FROM exposures")
    reset_store()
    store().append("exposures", exposures)  # only the links are missing, as after a METRIC_LANDING switch
    assert crossing_units(eid, cid, arms_of) == set()  # the analysis no longer sees the crossing
    spillover.ingest(SpilloverLinkIn(eventId="r0", linkType="REFERRAL", sourceUnitId=out[0], targetUnitId=out[1],
                                     cohortIds=[cid]), ACTOR)  # a redelivery lands r0 meanwhile
    got = backfill_links([cid])
    assert (got.landed, got.already_landed) == (1, 1) and got.per_cohort == {cid: 1}
    assert rows()[:2] == (2, 2)
    assert crossing_units(eid, cid, arms_of) == {out[0], out[1]}
