"""The Firestore backend dies in the middle of a sweep and of a KPI batch, comes back with what was
committed before the crash, and the retry (Pub/Sub redelivery, the next tick, the client's retry
of a 503) ends in exactly the state of a run without the fault.

The crash is placed deterministically on one commit RPC, chosen by what it writes (sweep: the
snapshot, the kill, the ledger checkpoint, the outbox flush) or by its position (KPI batch: the
first, middle and last event), either before it reaches the backend or after it was applied but
before its response arrived. The starting state comes from an emulator export, so the clean and
the faulty run start from the same documents.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from functions_framework import create_app

from functions.adapters import outbox, pubsub
from functions.adapters.metric_store import StoreUnavailable, reset_store, store
from functions.adapters.pubsub import ensure_topics
from functions.config import reset_settings
from functions.models.experiments import KpiEvent
from functions.services.experiments import repository
from functions.services.experiments.kpi import ingest
from functions.services.ledger.verification import verify_all
from localdev.tokens import bearer
from tests.conftest import ROOT
from tests.integration.faults.conftest import (
    CommitCrash,
    RestartableFirestore,
    dedicated_firestore,
    merge_shards,
    scrub,
)
from tests.support.database import dump
from tests.support.factories import expose, kpi, running_experiment
from tests.support.pubsub import PubsubProbe
from tests.support.warehouse import sweep_stats

SERVICE = bearer("app-backend", ["service"])


def envelope(payload: dict[str, Any], published: datetime, message_id: str) -> dict[str, Any]:
    """A Pub/Sub push body with a fixed publish time (the sweep window comes from it)."""
    return {"message": {"data": base64.b64encode(json.dumps(payload).encode()).decode(), "messageId": message_id,
                        "publishTime": published.isoformat().replace("+00:00", "Z"), "attributes": {}},
            "subscription": "projects/demo/subscriptions/sweep-push"}


class PublishLog:
    """What the functions handed to Pub/Sub (the real publish still happens)."""

    def __init__(self, monkeypatch) -> None:
        self.sent: list[dict[str, Any]] = []
        real = pubsub.publish

        def record(topic_key: str, payload: dict[str, Any], **attributes: str) -> str:
            message_id = real(topic_key, payload, **attributes)
            self.sent.append({"topic": topic_key, "key": attributes.get("messageKey"), "payload": scrub(payload)})
            return message_id

        monkeypatch.setattr(pubsub, "publish", record)

    def take(self) -> list[dict[str, Any]]:
        out, self.sent = self.sent, []
        return sorted(out, key=lambda m: (m["topic"], m["key"]))


def end_state() -> dict[str, Any]:
    return scrub(merge_shards(dump()))


# -- sweep ------------------------------------------------------------------------------------------


def _breaching_experiment() -> str:
    """A RUNNING experiment whose treatment refunds at 90% (30 units) against an absolute 8% KILL
    guardrail: the always-valid bound (about 0.26) is clearly above the limit."""
    eid = running_experiment()
    units = {f"u{i:03d}": ("treatment" if i < 30 else "control") for i in range(34)}
    expose(eid, units)
    events = [kpi(u, "refund", 1.0 if arm == "treatment" and i % 10 else 0.0, eventId=f"r-{u}")
              for i, (u, arm) in enumerate(units.items())]
    assert ingest([KpiEvent.model_validate(e) for e in events]).accepted == len(events)
    outbox.flush_all()  # the setup's announcements (what the Firestore trigger would have sent)
    return eid


@dataclass
class SweepScenario:
    fs: RestartableFirestore
    eid: str
    start: Path  # export of the state before the sweep
    sweep: Any  # functions-framework test client of main.sweep
    tick: dict[str, Any]
    next_tick: dict[str, Any]
    log: PublishLog
    reference: dict[str, Any]
    reference_messages: list[dict[str, Any]]


@pytest.fixture(scope="module")
def sweep_scenario(emulators, tmp_path_factory) -> Iterator[SweepScenario]:
    """Built once: the state before the sweep (exported) and the end state of the clean run."""
    with dedicated_firestore(tmp_path_factory.mktemp("sweep")) as fs, pytest.MonkeyPatch.context() as mp:
        mp.setenv("TOPIC_PREFIX", f"t{uuid.uuid4().hex[:10]}-")
        # a metric-store file: the scenario's landed rows outlive the per-test reset of the store
        mp.setenv("METRIC_STORE_PATH", str(tmp_path_factory.mktemp("metrics") / "metrics.duckdb"))
        reset_settings()
        reset_store()
        ensure_topics()
        probe = PubsubProbe()
        kill_sub = probe.subscribe("kill_switch")
        eid = _breaching_experiment()
        start = fs.export()
        published = datetime.now(UTC) - timedelta(seconds=5)
        sweep = create_app(target="sweep", source=str(ROOT / "main.py")).test_client()
        log = PublishLog(mp)

        # the clean run: the tick, then the next scheduled one
        tick = envelope({}, published, "tick-1")
        next_tick = envelope({}, published + timedelta(minutes=5), "tick-2")
        assert sweep.post("/", json=tick).status_code == 200
        assert sweep.post("/", json=next_tick).status_code == 200
        reference, reference_messages = end_state(), log.take()
        assert repository.load(eid)["state"] == "KILLED"
        assert [e["action"] for e in repository.events(eid)].count("KILL") == 1
        snapshots = [p for p in reference if p.startswith("experimentSnapshots/")]
        assert len(snapshots) == 2 and "experimentSnapshots/_sweep" in snapshots  # one window + the sweep status
        assert sorted(m["topic"] for m in reference_messages) == ["experiment_state", "kill_switch",
                                                                   "ledger_checkpoints"]
        kills = probe.drain(kill_sub, quiet_seconds=1.0)  # it really reached Pub/Sub, once
        assert [(k["experimentId"], k["action"], k["guardrail"]) for k in kills] == [(eid, "KILL", "refund")]
        assert verify_all()["ok"]
        try:
            yield SweepScenario(fs, eid, start, sweep, tick, next_tick, log, reference, reference_messages)
        finally:
            probe.close()
    reset_settings()


CRASH_POINTS = {
    # the commit that writes the window's snapshot (the sweep's idempotency key) - and the kill
    "snapshot": lambda paths: any("/experimentSnapshots/" in p for p in paths),
    # the commit that moves the experiment to KILLED (ledger entry + outbox messages with it)
    "kill": lambda paths: any("/offerExperiments/" in p and "/" not in p.split("/offerExperiments/")[1]
                              for p in paths),
    # the signed ledger checkpoint
    "checkpoint": lambda paths: any("/checkpoints/" in p for p in paths),
    # marking the first published outbox message as sent
    "outbox": lambda paths: bool(paths) and all("/outbox/" in p for p in paths),
}


@pytest.mark.parametrize("mode", ["before", "after"])
@pytest.mark.parametrize("point", list(CRASH_POINTS))
def test_firestore_crash_mid_sweep_then_redelivery_ends_as_the_clean_sweep(sweep_scenario, point, mode):
    sc = sweep_scenario
    sc.fs.restart(sc.start)
    crash = CommitCrash(sc.fs, where=CRASH_POINTS[point], mode=mode).install()
    first = sc.sweep.post("/", json=sc.tick)
    assert crash.crashed, f"the sweep never made a {point} commit"
    crash.recover()
    if first.status_code != 200:  # a failed delivery is redelivered by Pub/Sub
        assert sc.sweep.post("/", json=sc.tick).status_code == 200
    assert sc.sweep.post("/", json=sc.next_tick).status_code == 200  # and the schedule goes on

    state, messages = end_state(), sc.log.take()
    diff = sorted(p for p in set(state) | set(sc.reference) if state.get(p) != sc.reference.get(p))
    assert not diff, f"end state differs from the clean sweep at {diff[:8]}: " + "; ".join(
        f"{p}: {state.get(p)} != {sc.reference.get(p)}" for p in diff[:2])
    assert repository.load(sc.eid)["state"] == "KILLED"
    assert verify_all()["ok"]
    unique = sorted({m["key"]: m for m in messages}.values(), key=lambda m: (m["topic"], m["key"]))
    assert unique == sc.reference_messages  # every announcement made, none lost, same content
    if not crash.crashed_outbox_mark:
        # a repeat (same messageKey, dropped by subscribers) only if the crash hit the flush itself
        assert messages == sc.reference_messages


# -- KPI batch ---------------------------------------------------------------------------------------


def _kpi_batch() -> list[dict[str, Any]]:
    """Integer values (exact sums in any order); several events per unit; pre-period values."""
    ts = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    rows = [("a", "revenue", 10.0), ("a", "revenue", 5.0), ("b", "revenue", 7.0), ("c", "revenue", 3.0),
            ("a", "conversion", 1.0), ("d", "conversion", 1.0), ("b", "refund", 1.0), ("e", "revenue", 2.0),
            ("e", "revenue", 4.0), ("f", "refund", 0.0)]
    return [kpi(unit, metric, value, eventId=f"k{i:02d}", timestamp=ts, preValue=float(len(unit)) * 2)
            for i, (unit, metric, value) in enumerate(rows)]


def test_a_kpi_batch_touches_no_firestore_and_a_retried_batch_counts_every_event_once(
        crashable_firestore, function_client, monkeypatch):
    """KPI ingestion is one append to the metric store: no Firestore commit at all. A batch whose
    append fails before landing, or lands and then loses its response, is retried by the client;
    the statistics afterwards equal those of one clean delivery."""
    fs = crashable_firestore
    eid = running_experiment(kpis=[
        {"metric": "revenue", "role": "PRIMARY", "type": "MEAN", "direction": "INCREASE"},
        {"metric": "conversion", "role": "SECONDARY", "type": "PROPORTION"},
        {"metric": "revenue-per-conversion", "role": "SECONDARY", "type": "RATIO", "numerator": "revenue",
         "denominator": "conversion"}])
    expose(eid, {"a": "control", "b": "treatment", "c": "control", "d": "treatment", "e": "control",
                 "f": "treatment"})
    batch = _kpi_batch()
    api = function_client("experiments")
    counter = CommitCrash(fs).install()
    clean = api.post("/kpi-events", json={"events": batch}, headers=SERVICE)
    assert clean.status_code == 200, clean.get_json()
    assert clean.get_json()["accepted"] == len(batch) and counter.commits == 0
    reference = sweep_stats(eid)
    engine = store()
    real_append = engine.append
    for mode in ("before", "after"):

        def failing(table, rows, mode=mode):
            if mode == "after":
                real_append(table, rows)
            raise StoreUnavailable(f"metric store connection lost {mode} the append")

        monkeypatch.setattr(engine, "append", failing)
        failed = api.post("/kpi-events", json={"events": batch}, headers=SERVICE)
        assert failed.status_code == 503, failed.get_json()
        assert failed.get_json()["error"]["code"] == "METRIC_STORE_UNAVAILABLE"
        monkeypatch.setattr(engine, "append", real_append)
        retry = api.post("/kpi-events", json={"events": batch}, headers=SERVICE)
        assert retry.status_code == 200 and retry.get_json()["accepted"] == len(batch)
        again = sweep_stats(eid)
        assert again == reference, mode
