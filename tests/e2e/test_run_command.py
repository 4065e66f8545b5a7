"""The run command end to end: every function served, Pub/Sub push, the Firestore bridge and
the demo lifecycle ending in a guardrail kill, with the default sweep ticker running as in
`make run` (reuses the session's emulators via the env)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.timeout(660)
def test_run_command_serves_everything_and_the_demo_ends_in_a_guardrail_kill(emulators):
    env = {**os.environ, **emulators.env(), "LOG_LEVEL": "WARNING"}
    log_path = ROOT / "artifacts" / "run-command.log"
    log_path.parent.mkdir(exist_ok=True)
    with open(log_path, "w") as log:  # streamed, so a hang still shows how far the demo got
        proc = subprocess.run([sys.executable, "-m", "localdev.run", "--exit-after-demo"],
                              cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True, timeout=600)
    text = log_path.read_text()
    assert proc.returncode == 0, text[-6000:]
    for function in ("holdouts", "experiments", "analytics", "rollouts", "ledger", "assign", "kpi_events",
                     "sweep", "experiment_written"):
        assert f"/{function}" in text
    assert "CREATED -> SUBMITTED -> APPROVED_BY -> STARTED" in text
    assert "-> experiment KILLED" in text
    assert '"action":"KILL"' in text and '"guardrail":"refund"' in text
    assert "/console/" in text and "is RUNNING with an analysis" in text  # the console has both to show
