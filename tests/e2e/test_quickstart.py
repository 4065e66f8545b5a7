"""The README's quick start, run as written against the running system (`localdev.run --no-demo`),
so the README cannot drift: every `call` checks the status the README shows, and every
`# prints: …` comment must appear in the output."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from localdev.emulators import free_port
from tests.conftest import ROOT

BASE_LINE = re.compile(r"^BASE=http://127\.0\.0\.1:8000\b.*$", re.M)


def quickstart_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    assert len(blocks) >= 6, "the quick start lost its steps"
    assert "localdev.run" in blocks[0], "the first block starts the system (terminal 1)"
    return blocks[1:]


def start_system(env: dict[str, str], port: int, log_path) -> subprocess.Popen:
    log = open(log_path, "w")  # noqa: SIM115 - the process writes to it until it stops
    proc = subprocess.Popen(
        [sys.executable, "-m", "localdev.run", "--no-demo", "--port", str(port), "--tick-seconds", "3600"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if "serving; Ctrl-C stops everything" in log_path.read_text():
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    proc.kill()
    raise AssertionError(f"the system did not start:\n{log_path.read_text()[-4000:]}")


@pytest.mark.timeout(900)
def test_the_quick_start_runs_as_written(emulators, tmp_path):
    env = {**os.environ, **emulators.env(), "LOG_LEVEL": "WARNING"}
    port = free_port()
    artifacts = ROOT / "artifacts"
    artifacts.mkdir(exist_ok=True)
    blocks = quickstart_blocks()
    script = "set -euo pipefail\n" + "\n".join(blocks)
    assert BASE_LINE.search(script), "the quick start sets BASE to the default port"
    script = BASE_LINE.sub(f"BASE=http://127.0.0.1:{port}", script)
    proc = start_system(env, port, artifacts / "quickstart-system.log")
    try:
        run = subprocess.run(["bash", "-c", script], cwd=ROOT, env={**env, "TMPDIR": str(tmp_path)},
                             capture_output=True, text=True, timeout=840)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
    output = run.stdout + run.stderr
    (artifacts / "quickstart-output.txt").write_text(output)
    assert run.returncode == 0, output[-6000:]
    for expected in re.findall(r"# prints: (.+)$", "\n".join(blocks), re.M):
        assert expected.strip() in run.stdout, f"the README says the quick start prints {expected!r}"
    assert not list(ROOT.glob("kpis-*.json")), "the quick start writes into its scratch folder, not the repository"
