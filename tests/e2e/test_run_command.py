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


@pytest.mark.timeout(300)
def test_quiet_run_prints_only_the_urls_and_files_the_details(emulators):
    """`make run ARGS="--quiet --no-demo"`: the terminal shows the functions' and the console's
    URLs; emulator hosts, push subscriptions and settings go to .run/localdev.log."""
    env = {**os.environ, **emulators.env(), "LOG_LEVEL": "WARNING"}
    proc = subprocess.run([sys.executable, "-m", "localdev.run", "--quiet", "--no-demo", "--exit-after-demo"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert any(line.rstrip().endswith("/experiment_written") for line in lines)
    assert any("/console/" in line for line in lines)
    noise = [line for line in lines if "http://" not in line and not line.startswith("functions at")]
    assert noise == ["details and logs: " + str(ROOT / ".run" / "localdev.log")], noise
    logged = (ROOT / ".run" / "localdev.log").read_text()
    assert "push subscriptions:" in logged and "Firestore emulator" in logged and "sweep ticks every" in logged
