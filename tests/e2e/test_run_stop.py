"""`python -m localdev.run` stops on SIGTERM: at any point (while serving, or in the middle of the
demo) it exits, cleanly, and leaves no emulator process behind. It starts emulators of its own
here (the session's are not passed on), and records their PIDs in a file of this test.

The bound is generous on purpose (a correctness check: it exits at all); the measured seconds
are printed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

EXIT_BOUND_SECONDS = 60.0


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _run_until(trigger: str, pids_file: Path, extra: list[str]) -> tuple[subprocess.Popen[str], list[str]]:
    env = {k: v for k, v in os.environ.items() if k not in ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST")}
    env.update(EMULATOR_PIDS_FILE=str(pids_file), PYTHONUNBUFFERED="1", LOG_LEVEL="WARNING")
    proc = subprocess.Popen([sys.executable, "-m", "localdev.run", "--tick-seconds", "2", *extra], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if trigger in line:
            break
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()  # keep the pipe drained
    return proc, lines


@pytest.mark.timeout(600)
@pytest.mark.parametrize(("trigger", "extra"), [("serving;", ["--no-demo"]), ("demo:", [])],
                         ids=["while-serving", "during-the-demo"])
def test_sigterm_stops_the_run_command_and_its_emulators(tmp_path, trigger, extra):
    pids_file = tmp_path / "pids"
    pids_file.write_text("")
    proc, lines = _run_until(trigger, pids_file, extra)
    pids = [int(p) for p in pids_file.read_text().split()]
    try:
        assert proc.poll() is None, "".join(lines[-40:])
        assert len(pids) == 2 and all(_alive(p) for p in pids)  # its own Firestore and Pub/Sub emulators
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=EXIT_BOUND_SECONDS)
        seconds = time.monotonic() - started
        print(f"\nlocaldev.run exited {seconds:.1f}s after SIGTERM ({trigger})")
        assert code == 0, "".join(lines[-40:])
        assert not [p for p in pids if _alive(p)], "emulator processes left running"
    finally:
        if proc.poll() is None:
            proc.kill()
        for pgid in pids:  # never leak emulators, even when the test fails
            if _alive(pgid):
                os.killpg(pgid, signal.SIGKILL)


def test_a_worker_thread_stuck_in_retries_does_not_hold_the_exit():
    """Worker threads (thread pools) still retrying against stopped emulators are joined by
    Python at exit; the run command leaves after a short grace period instead."""
    code = ("import threading, time\n"
            "from localdev.run import _exit\n"
            "threading.Thread(target=time.sleep, args=(600,)).start()\n"
            "_exit(3)\n")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=EXIT_BOUND_SECONDS)
    print(f"\nexited {time.monotonic() - started:.1f}s after main() returned")
    assert done.returncode == 3
