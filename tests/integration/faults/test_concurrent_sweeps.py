"""Two sweeps of the same window at once (a duplicated scheduler tick, or two schedulers) end in
exactly the state of one sweep: one snapshot, one KILL with its event, ledger entry and outbox
messages, a verifying ledger with one checkpoint, and every announcement published (a repeat,
if both flushes raced, carries the same messageKey)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from functions.events import sweep as sweep_event
from functions.services.experiments import repository
from functions.services.ledger.verification import verify_all
from tests.integration.faults.test_emulator_restart import PublishLog, _breaching_experiment, end_state
from tests.support.pubsub import pubsub_cloud_event


def _sweep_concurrently(published: datetime, message_ids: tuple[str, str]) -> list[BaseException]:
    barrier = threading.Barrier(len(message_ids))
    errors: list[BaseException] = []

    def one(message_id: str) -> None:
        try:
            barrier.wait()
            sweep_event.handle(pubsub_cloud_event({}, message_id=message_id, published=published))
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(m,)) for m in message_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_two_concurrent_sweeps_end_in_the_state_of_one(crashable_firestore, topics, monkeypatch):
    fs = crashable_firestore
    eid = _breaching_experiment()
    start = fs.export()
    published = datetime.now(UTC) - timedelta(seconds=5)
    log = PublishLog(monkeypatch)

    sweep_event.handle(pubsub_cloud_event({}, message_id="solo", published=published))
    reference, reference_messages = end_state(), log.take()
    assert repository.load(eid)["state"] == "KILLED"
    assert sorted(m["topic"] for m in reference_messages) == ["experiment_state", "kill_switch", "ledger_checkpoints"]

    for round_ in range(2):  # the same tick delivered twice, then two different ticks of one window
        fs.restart(start)
        ids = ("dup", "dup") if round_ == 0 else ("scheduler-a", "scheduler-b")
        assert _sweep_concurrently(published, ids) == []
        state, messages = end_state(), log.take()
        diff = sorted(p for p in set(state) | set(reference) if state.get(p) != reference.get(p))
        assert not diff, f"round {round_}: differs at {diff[:6]}"
        events = repository.events(eid)
        assert [e["action"] for e in events].count("KILL") == 1
        assert sum(p.startswith("experimentSnapshots/") and p != "experimentSnapshots/_sweep" for p in state) == 1
        assert sum("/checkpoints/" in p for p in state) == 1
        assert verify_all()["ok"]
        unique = sorted({m["key"]: m for m in messages}.values(), key=lambda m: (m["topic"], m["key"]))
        assert unique == reference_messages
        assert [m["topic"] for m in messages].count("kill_switch") in (1, 2)  # a raced flush may repeat it
