"""The BigQuery emulator harness stops what it starts, records it for the stray-process check,
reuses a running emulator, and says how to fix what is missing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from localdev import bigquery_emulator as harness
from localdev.emulators import free_port


def _group_alive(pgid: int) -> bool:
    return subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True).returncode == 0


def test_stop_leaves_no_process_behind_and_the_pid_is_recorded(bigquery_emulator, monkeypatch):
    session_host = os.environ[harness.ENV_VAR]
    monkeypatch.delenv(harness.ENV_VAR)
    extra = harness.BigQueryEmulator(project_id="demo-harness-check")
    try:
        extra.start()
        assert extra.process is not None
        pid = extra.process.pid
        assert _group_alive(pid) and harness._healthy(extra.host)
        assert os.environ[harness.ENV_VAR] == extra.host != session_host
        assert str(pid) in Path(os.environ["EMULATOR_PIDS_FILE"]).read_text().split()
    finally:
        extra.stop()
    assert not _group_alive(pid)
    assert harness.ENV_VAR not in os.environ  # the previous environment is back


def test_a_running_emulator_named_by_env_is_reused(bigquery_emulator):
    reused = harness.BigQueryEmulator().start()
    assert reused.external and reused.process is None and reused.host == bigquery_emulator.host
    reused.stop()  # must not stop the session's emulator
    assert harness._healthy(bigquery_emulator.host)


def test_a_missing_venv_names_the_command_that_builds_it(monkeypatch, tmp_path):
    monkeypatch.delenv(harness.ENV_VAR, raising=False)
    monkeypatch.setattr(harness, "BINARY", tmp_path / "bin" / "bqemulator")
    with pytest.raises(harness.BigQueryEmulatorUnavailable) as err:
        harness.BigQueryEmulator().start()
    assert "scripts/setup_bqemulator.sh" in str(err.value) and "bqemulator" in str(err.value)


@pytest.mark.parametrize("value", ["127.0.0.1:{port}", "http://127.0.0.1:{port}"])
def test_a_host_that_does_not_answer_is_an_error_not_a_hang(monkeypatch, value):
    monkeypatch.setenv(harness.ENV_VAR, value.format(port=free_port()))
    with pytest.raises(harness.BigQueryEmulatorUnavailable, match="scheme"):
        harness.BigQueryEmulator().start()
