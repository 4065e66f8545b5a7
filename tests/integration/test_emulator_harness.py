"""The harness stops what it starts, reuses running emulators, and explains what is missing."""

from __future__ import annotations

import os
import subprocess

import pytest

from localdev import emulators as harness


def _group_alive(pgid: int) -> bool:
    return subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True).returncode == 0


def test_stop_leaves_no_process_behind(emulators, monkeypatch):
    monkeypatch.delenv("FIRESTORE_EMULATOR_HOST")
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST")
    extra = harness.Emulators(project_id="demo-harness-check")
    try:
        extra.start()
        pids = extra.pids()
        assert len(pids) == 2 and all(_group_alive(p) for p in pids)
        assert harness._answers(extra.firestore_host) and harness._answers(extra.pubsub_host)
    finally:
        extra.stop()
    assert not any(_group_alive(p) for p in pids)
    assert "FIRESTORE_EMULATOR_HOST" not in os.environ  # previous environment restored


def test_running_emulators_named_by_env_are_reused(emulators):
    reused = harness.Emulators().start()
    assert reused.external and reused.pids() == []
    assert reused.firestore_host == os.environ["FIRESTORE_EMULATOR_HOST"]
    reused.stop()  # must not stop the session's emulators
    assert harness._answers(emulators.firestore_host)


def test_missing_parts_are_named_with_how_to_get_them(monkeypatch, tmp_path):
    monkeypatch.delenv("FIRESTORE_EMULATOR_HOST", raising=False)
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST", raising=False)
    monkeypatch.setattr(harness, "SDK_ROOTS", [tmp_path])
    with pytest.raises(harness.EmulatorUnavailable) as err:
        harness.Emulators().start()
    message = str(err.value)
    assert "google-cloud-cli-firestore-emulator" in message and "google-cloud-cli-pubsub-emulator" in message
    assert "apt-get install" in message
