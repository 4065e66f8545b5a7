"""A sweep step that cannot run is an error health reports, never a silent skip: the rollout and
checkpoint steps are imported statically, every step runs even when another failed, and the
failed step is named in the sweep's result, its status document and experiment health."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import pytest

from functions.events import sweep as sweep_event
from functions.services import sweep
from functions.services.experiments import health
from functions.services.ledger import checkpoints
from functions.services.rollouts import progression
from localdev.tokens import bearer
from tests.support.factories import running_experiment
from tests.support.pubsub import pubsub_cloud_event

VIEWER = bearer("viewer-1", ["viewer"])


def test_a_missing_step_module_does_not_switch_the_step_off(monkeypatch):
    """An import that fails at run time used to be swallowed (the step silently skipped)."""
    running_experiment()
    monkeypatch.setitem(sys.modules, "functions.services.rollouts.progression", None)
    monkeypatch.setitem(sys.modules, "functions.services.ledger.checkpoints", None)
    result = sweep.run_sweep(datetime.now(UTC))
    assert result["ok"] is True and result["steps"]["checkpoint"] == "OK"
    assert result["checkpoint"] is not None and result["checkpoint"]["treeSize"] > 0  # it really ran


@pytest.mark.parametrize("broken", ["rollouts", "checkpoint"])
def test_a_failing_step_is_reported_and_the_other_steps_still_run(monkeypatch, function_client, broken):
    eid = running_experiment()
    calls: list[str] = []

    def fail(*_args):
        raise RuntimeError("signing key unavailable")

    if broken == "rollouts":
        monkeypatch.setattr(progression, "progress_experiment", fail)
    else:
        monkeypatch.setattr(checkpoints, "checkpoint_if_due", fail)
        real = progression.progress_experiment
        monkeypatch.setattr(progression, "progress_experiment", lambda *a: calls.append("rollouts") or real(*a))
    result = sweep.run_sweep(datetime.now(UTC))
    assert result["ok"] is False
    assert result["steps"][broken] == "FAILED"
    assert [s for s, outcome in result["steps"].items() if outcome == "FAILED"] == [broken]
    failure = result["failures"][0]
    assert failure["step"] == broken and failure["code"] == "RuntimeError" and "signing key" in failure["message"]
    assert [r["experimentId"] for r in result["experiments"]] == [eid] and "error" not in result["experiments"][0]
    if broken == "checkpoint":
        assert calls == ["rollouts"]
    else:
        assert result["checkpoint"] is not None  # the checkpoint still ran after the broken rollout step
    report = function_client("experiments").get(f"/{eid}/health", headers=VIEWER).get_json()
    assert report["overall"] == "AT_RISK" and f"sweep step {broken} failed" in report["reasons"]
    assert report["sweep"]["steps"][broken] == "FAILED"

    monkeypatch.undo()  # the step works again: the next sweep clears the report
    assert sweep.run_sweep(datetime.now(UTC))["ok"] is True
    assert health.health(eid)["sweep"]["ok"] is True


def test_a_tick_whose_step_failed_is_redelivered(monkeypatch):
    running_experiment()

    def fail(*_args):
        raise RuntimeError("boom")

    monkeypatch.setattr(checkpoints, "checkpoint_if_due", fail)
    with pytest.raises(sweep_event.SweepIncomplete):
        sweep_event.handle(pubsub_cloud_event({}, message_id="tick-1"))
    assert health.sweep_status()["steps"]["checkpoint"] == "FAILED"
