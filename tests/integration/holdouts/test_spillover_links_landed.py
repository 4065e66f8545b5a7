"""Spillover links land as append-only rows in the metric store's `links` table after the link's
Firestore record commits: again on every redelivery (each read takes a link once), never when
refused under BLOCK; analyses find the units linked across arms from these rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from functions.adapters.metric_store import store
from functions.models.holdouts import SpilloverLinkIn
from functions.services.holdouts import cohorts, corebridge, spillover
from functions.services.holdouts.exposures import record_exposures
from functions.services.metrics.analysis_inputs import crossing_units, links_query
from tests.support.factories import frozen_cohort, running_experiment

ACTOR = {"uid": "svc-1", "role": "service"}


def test_links_land_on_every_delivery_count_once_and_blocked_links_never_land():
    cid = frozen_cohort(percentage=20.0)
    cohort = cohorts.get(cid).model_dump(mode="json")
    pool = [f"user-{i}" for i in range(300)]
    held = [u for u in pool if corebridge.cohort_member(cohort, u, None)][:1]
    out = [u for u in pool if not corebridge.cohort_member(cohort, u, None)][:5]
    referral = SpilloverLinkIn(eventId="r1", linkType="REFERRAL", sourceUnitId=out[0], targetUnitId=out[1],
                               cohortIds=[cid])
    results = [spillover.ingest(referral, ACTOR) for _ in range(3)]  # delivered three times
    assert [r.duplicate for r in results] == [False, True, True]
    gift = SpilloverLinkIn(eventId="g1", linkType="GIFT", sourceUnitId=out[2], targetUnitId=held[0], cohortIds=[cid])
    assert spillover.ingest(gift, ACTOR).blocked  # GIFT across sides: BLOCK by default
    spillover.ingest(SpilloverLinkIn(eventId="r2", linkType="REFERRAL", sourceUnitId=out[3], targetUnitId=out[4],
                                     cohortIds=[cid]), ACTOR)
    landed = store().query("SELECT link_event_id, cohort_id, link_type FROM links ORDER BY link_event_id")
    assert [r["link_event_id"] for r in landed] == ["r1", "r1", "r1", "r2"]  # the gift never landed
    assert {(r["cohort_id"], r["link_type"]) for r in landed} == {(cid, "REFERRAL")}
    assert store().query(links_query(), {"cohort_id": cid}) == [
        {"source_unit_id": out[0], "target_unit_id": out[1]}, {"source_unit_id": out[3], "target_unit_id": out[4]}]
    assert store().query(links_query(), {"cohort_id": "another-cohort"}) == []

    # the analysis's view: r1 links control to treatment (both left out), r2 stays inside control
    eid = running_experiment(cid)
    arms = {out[0]: "control", out[1]: "treatment", out[3]: "control", out[4]: "control"}
    record_exposures([{"unitId": u, "experimentId": eid, "variant": v, "inHoldout": False, "status": "ASSIGNED"}
                      for u, v in arms.items()], datetime.now(UTC) - timedelta(hours=1))
    assert crossing_units(eid, cid, ("control", "treatment", "holdout")) == {out[0], out[1]}
    assert crossing_units(eid, None, ("control", "treatment", "holdout")) == set()
