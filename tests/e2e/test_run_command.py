"""The run command end to end: every function served, Pub/Sub push, the Firestore bridge and
the demo lifecycle ending in a guardrail kill (reuses the session's emulators via the env)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT


def test_run_command_serves_everything_and_the_demo_ends_in_a_guardrail_kill(emulators):
    env = {**os.environ, **emulators.env(), "LOG_LEVEL": "WARNING"}
    out = subprocess.run([sys.executable, "-m", "localdev.run", "--exit-after-demo", "--tick-seconds", "600"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    for function in ("holdouts", "experiments", "analytics", "rollouts", "ledger", "assign", "kpi_events",
                     "sweep", "experiment_written"):
        assert f"/{function}" in text
    assert "CREATED -> SUBMITTED -> APPROVED_BY -> STARTED" in text
    assert "-> experiment KILLED" in text
    assert '"action":"KILL"' in text and '"guardrail":"refund"' in text
