"""KPI ingestion exactly once, the sweep's one snapshot per window, and a guardrail kill with
its kill-switch message."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime

from functions.adapters import outbox
from functions.adapters.repositories.experiments import document as experiment_document
from functions.core.stats.corrections import ExclusionConfig
from functions.models.experiments import KpiEvent
from functions.services import sweep
from functions.services.experiments import repository
from functions.services.experiments.kpi import ingest, ingest_one
from functions.services.metrics import analysis_inputs
from localdev.tokens import bearer
from tests.support.factories import expose, kpi, running_experiment
from tests.support.pubsub import push_envelope
from tests.support.warehouse import sweep_stats


def test_kpi_events_delivered_twice_count_once(function_client):
    eid = running_experiment()
    expose(eid, {"u1": "control", "u2": "treatment"})
    events = [kpi("u1", "revenue", 10.0, eventId="e1"), kpi("u1", "revenue", 5.0, eventId="e2"),
              kpi("u2", "revenue", 7.0, eventId="e3")]
    client = function_client("kpi_events")
    for event in events + events:  # every message redelivered
        assert client.post("/", json=push_envelope(event)).status_code == 200
    http = function_client("experiments").post("/kpi-events", json={"events": events},
                                                 headers=bearer("app-backend", ["service"]))
    assert http.get_json()["accepted"] == 3  # landed a third time: reads count each event id once
    stats = sweep_stats(eid)
    control, treatment = stats["control"]["revenue"], stats["treatment"]["revenue"]
    assert (control.n, control.total_x, control.var) == (1.0, 15.0, 0.0)  # one unit with total 15
    assert (treatment.n, treatment.total_x) == (1.0, 7.0)


def test_only_exposed_units_after_first_exposure_count_and_consent_is_respected():
    eid = running_experiment()
    expose(eid, {"u1": "control"})
    early = kpi("u1", "revenue", 3.0, timestamp=datetime(2020, 1, 1, tzinfo=UTC).isoformat())
    outcomes = [ingest_one(KpiEvent.model_validate(e)) for e in (
        kpi("stranger", "revenue", 1.0), early, kpi("u1", "revenue", 2.0, consent={"analytics": False}),
        kpi("u1", "revenue", 4.0, currency="EUR"))]
    assert outcomes == ["ACCEPTED", "ACCEPTED", "DROPPED_NO_CONSENT", "ACCEPTED"]  # facts land; reads attribute
    # the stranger was never exposed and the early event predates the exposure: neither counts
    assert sweep_stats(eid)["control"]["revenue"].total_x == 4.0 * 1.08
    bad = ingest([KpiEvent.model_validate(kpi("u1", "revenue", 1.0, currency="XYZ"))])
    assert bad.rejected[0]["code"] == "UNKNOWN_CURRENCY"


def test_concurrent_sweeps_make_one_snapshot_per_window():
    eid = running_experiment()
    now = datetime.now(UTC)
    results: list[object] = []

    def one() -> None:
        try:
            results.append(sweep.sweep_experiment(repository.load(eid), now)["skipped"])
        except Exception as exc:
            # the loser finds the window's snapshot, or, when the emulator is slow enough that its
            # transaction retries run out first, gives up (the scheduler's redelivery then skips)
            aborted = any(type(e).__name__ == "Aborted" for e in (exc, exc.__cause__))
            results.append(True if aborted else repr(exc))

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results, key=str) == [False, True]
    from functions.adapters.firestore import EXPERIMENT_SNAPSHOTS, db

    assert len(list(db().collection(EXPERIMENT_SNAPSHOTS).stream())) == 1


def test_refund_guardrail_breach_kills_and_the_kill_switch_is_published(topics):
    kill_sub = topics.subscribe("kill_switch")
    state_sub = topics.subscribe("experiment_state")
    eid = running_experiment()
    rng = random.Random(5)
    units = {f"u{i}": ("control" if i % 2 else "treatment") for i in range(400)}
    expose(eid, units)
    events = []
    for unit, arm in units.items():
        refund_rate = 0.03 if arm == "control" else 0.45  # treatment refunds far above the 8% limit
        events.append(kpi(unit, "refund", 1.0 if rng.random() < refund_rate else 0.0))
    result = ingest([KpiEvent.model_validate(e) for e in events])
    assert result.accepted == len(events)
    summary = sweep.run_sweep()
    mine = next(r for r in summary["experiments"] if r["experimentId"] == eid)
    assert mine["acted"] == "KILL"
    assert repository.load(eid)["state"] == "KILLED"
    outbox.flush(experiment_document(eid))
    kills = topics.drain(kill_sub)
    assert len(kills) == 1
    message = kills[0]
    assert message["experimentId"] == eid and message["action"] == "KILL" and message["guardrail"] == "refund"
    assert message["bound"] > 0.08 and message["observed"] > message["bound"]
    states = topics.drain(state_sub)
    assert any(m["to"] == "KILLED" for m in states)


def _refund_breach(eid: str) -> None:
    rng = random.Random(7)
    units = {f"r{i}": ("control" if i % 2 else "treatment") for i in range(200)}
    expose(eid, units)
    ingest([KpiEvent.model_validate(kpi(u, "refund", 1.0 if rng.random() < (0.03 if a == "control" else 0.5)
                                        else 0.0)) for u, a in units.items()])


def test_a_sweep_that_crashes_midway_leaves_nothing_and_the_rerun_acts_once(monkeypatch):
    from functions.adapters import ledger_store
    from functions.adapters.firestore import EXPERIMENT_SNAPSHOTS, db

    eid = running_experiment()
    _refund_breach(eid)
    now = datetime.now(UTC)

    def crash(*args, **kwargs):
        raise RuntimeError("process died between the snapshot and the kill")

    monkeypatch.setattr(sweep, "apply_transition", crash)
    try:
        sweep.sweep_experiment(repository.load(eid), now)
        raise AssertionError("the crash should propagate")
    except RuntimeError:
        pass
    assert not db().collection(EXPERIMENT_SNAPSHOTS).document(sweep.snapshot_id(eid, sweep.window_start(now))).get(
    ).exists  # no half-done window that would make the rerun skip the kill
    assert repository.load(eid)["state"] == "RUNNING"
    monkeypatch.undo()
    first = sweep.sweep_experiment(repository.load(eid), now)
    again = sweep.sweep_experiment(repository.load(eid), now)  # a redelivered tick, same window
    assert (first["acted"], again["skipped"]) == ("KILL", True)
    assert repository.load(eid)["state"] == "KILLED"
    actions = [e["action"] for e in ledger_store.entries(ledger_store.experiment_chain(eid))]
    assert actions.count("EXPERIMENT_KILL") == 1


def test_ratio_and_cuped_sums_are_folded_per_unit():
    ratio = {"metric": "rpv", "role": "SECONDARY", "type": "RATIO", "numerator": "revenue", "denominator": "visits"}
    eid = running_experiment(kpis=[{"metric": "revenue", "role": "PRIMARY", "type": "MEAN"}, ratio])
    expose(eid, {"a": "treatment", "b": "treatment"})
    events = [kpi("a", "revenue", 10.0, preValue=4.0), kpi("a", "revenue", 2.0, preValue=99.0),  # later pre ignored
              kpi("a", "visits", 3.0), kpi("b", "revenue", 5.0, preValue=1.0), kpi("b", "visits", 1.0),
              kpi("b", "visits", 1.0)]
    assert ingest([KpiEvent.model_validate(e) for e in events]).accepted == 6
    doc = repository.load(eid)
    scope = analysis_inputs.Scope(eid, ("control", "treatment"), tuple(analysis_inputs.tracked_metrics(doc)))
    none = ExclusionConfig(winsor_percentile=None)
    rev = analysis_inputs.aggregated(doc, doc["kpis"][0], scope, none).stats["treatment"]
    # unit totals a=12 (pre 4), b=5 (pre 1)
    assert (rev.n, rev.total_x, rev.mean, rev.pre_mean) == (2.0, 17.0, 8.5, 2.5)
    assert (rev.var, rev.pre_var, rev.cov_x_pre) == (24.5, 4.5, 10.5)
    r = analysis_inputs.aggregated(doc, ratio, scope, none).stats["treatment"]  # (num, den): a=(12, 3), b=(5, 2)
    assert (r.n, r.total_num) == (2.0, 17.0)
    assert r.centred() == (2.0, 8.5, 2.5, 24.5, 0.5, 3.5)


def test_health_reports_exposure_srm_guardrail_bounds_snapshot_age_rollout_and_overall(function_client):
    client = function_client("experiments")
    viewer = bearer("viewer-v", ["viewer"])
    eid = running_experiment()
    fresh = client.get(f"/{eid}/health", headers=viewer).get_json()
    assert fresh["overall"] == "AT_RISK" and "no recent snapshot" in fresh["reasons"]
    assert fresh["latestSnapshotAgeSeconds"] is None
    expose(eid, {f"h{i}": ("control" if i % 2 else "treatment") for i in range(100)})
    sweep.sweep_experiment(repository.load(eid), datetime.now(UTC))
    healthy = client.get(f"/{eid}/health", headers=viewer).get_json()
    assert healthy["overall"] == "HEALTHY", healthy
    assert healthy["exposures"] == {"control": 50, "treatment": 50}
    assert healthy["srm"]["status"] == "PASS"
    assert healthy["latestSnapshotAgeSeconds"] >= 0 and "rollout" in healthy
    skewed = running_experiment()
    expose(skewed, {f"s{i}": ("control" if i % 5 else "treatment") for i in range(500)})
    sweep.sweep_experiment(repository.load(skewed), datetime.now(UTC))
    at_risk = client.get(f"/{skewed}/health", headers=viewer).get_json()
    assert at_risk["overall"] == "AT_RISK" and "sample ratio mismatch" in at_risk["reasons"]
    killed = running_experiment()
    _refund_breach(killed)
    sweep.sweep_experiment(repository.load(killed), datetime.now(UTC))
    violated = client.get(f"/{killed}/health", headers=viewer).get_json()
    assert violated["state"] == "KILLED" and violated["overall"] == "VIOLATED"
    breach = next(g for g in violated["guardrails"] if g["status"] == "BREACHED")
    assert breach["guardrail"] == "refund" and breach["bound"] > 0.08 and breach["observed"] > breach["bound"]
    assert client.get("/nope/health", headers=viewer).status_code == 404


def test_the_firestore_trigger_publishes_state_changes_once(topics):
    from cloudevents.http import CloudEvent

    from functions.events import experiment_written
    from functions.services.experiments.transitions import transition

    sub, kills = topics.subscribe("experiment_state"), topics.subscribe("kill_switch")
    eid = running_experiment()
    outbox.flush(experiment_document(eid))  # the creation-time announcements
    topics.drain(sub)
    transition(eid, "PAUSE", {"uid": "op", "role": "operator"}, "checking a spike")
    event = CloudEvent({"id": "w1", "type": "google.cloud.firestore.document.v1.written",
                        "source": "//firestore.googleapis.com/projects/p/databases/(default)",
                        "subject": f"documents/offerExperiments/{eid}"}, None)
    assert experiment_written.handle(event) == 2  # the state change and, for a pause, the kill switch
    assert experiment_written.handle(event) == 0  # redelivered trigger: nothing twice
    published = topics.drain(sub)
    assert [(m["experimentId"], m["from"], m["to"], m["reason"]) for m in published] == [
        (eid, "RUNNING", "PAUSED", "checking a spike")]
    assert [(m["experimentId"], m["action"], m["reason"]) for m in topics.drain(kills)] == [
        (eid, "PAUSE", "checking a spike")]
