"""Start the BigQuery API emulator (`bqemulator`, REST on DuckDB) on free loopback ports, or reuse
a running one.

Used by the test suite to exercise the BigQuery metric store through the official client. If
BIGQUERY_EMULATOR_HOST is already set (with its scheme, e.g. http://127.0.0.1:9050) that
emulator is used and nothing is started or stopped. Otherwise `bqemulator` runs from its own
virtualenv `.venv-bqemulator` (built by `scripts/setup_bqemulator.sh`: it pins a sqlglot and a
DuckDB the project's venv must not get) in its own process group; its pid goes to
EMULATOR_PIDS_FILE so `scripts/check_no_stray_emulators.sh` can prove it was stopped.

    python -m localdev.bigquery_emulator   # start it, print the export, wait for Ctrl-C
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from localdev.emulators import DEFAULT_PROJECT, ROOT, free_port

VENV = ROOT / ".venv-bqemulator"
BINARY = VENV / "bin" / "bqemulator"
ENV_VAR = "BIGQUERY_EMULATOR_HOST"
HOW_TO_INSTALL = f"Build its virtualenv: `bash scripts/setup_bqemulator.sh` (also run by `make test`), creating {VENV}."


class BigQueryEmulatorUnavailable(RuntimeError):
    """The emulator can neither be found nor reached; the message says what to do."""


def _healthy(base_url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/healthz", timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException):
        return False


@dataclass
class BigQueryEmulator:
    project_id: str = DEFAULT_PROJECT
    log_dir: Path = ROOT / ".run"
    host: str = ""  # with scheme: what BIGQUERY_EMULATOR_HOST holds
    external: bool = False
    process: subprocess.Popen[bytes] | None = None
    _saved: str | None = field(default=None, repr=False)

    def start(self, timeout: float = 60.0) -> BigQueryEmulator:
        given = os.environ.get(ENV_VAR)
        if given:
            if not _healthy(given):
                raise BigQueryEmulatorUnavailable(
                    f"{ENV_VAR}={given} is set but does not answer on /healthz (it needs the scheme, "
                    f"e.g. http://127.0.0.1:9050). Start it, or unset {ENV_VAR} to let this harness start one."
                )
            self.host, self.external = given.rstrip("/"), True
            return self
        if not BINARY.exists():
            raise BigQueryEmulatorUnavailable(
                f"cannot start the BigQuery emulator: {BINARY} is missing.\n{HOW_TO_INSTALL}")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        rest, grpc = free_port(), free_port()
        self.host = f"http://127.0.0.1:{rest}"
        atexit.register(self.stop)
        log = open(self.log_dir / "bigquery.log", "wb")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(
            [str(BINARY), "start", "--rest-port", str(rest), "--grpc-port", str(grpc),
             "--project", self.project_id, "--log-level", "warning"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # own process group: stop() takes any children with it
        )
        record = os.environ.get("EMULATOR_PIDS_FILE")
        if record:
            with open(record, "a") as fh:
                fh.write(f"{self.process.pid}\n")
        deadline = time.monotonic() + timeout
        while not _healthy(self.host):
            if self.process.poll() is not None:
                self.stop()
                raise BigQueryEmulatorUnavailable(
                    f"the BigQuery emulator exited early; see {self.log_dir / 'bigquery.log'}.\n{HOW_TO_INSTALL}")
            if time.monotonic() > deadline:
                self.stop()
                raise BigQueryEmulatorUnavailable(f"the BigQuery emulator did not answer within {timeout:.0f}s")
            time.sleep(0.2)
        self._saved = os.environ.get(ENV_VAR)
        os.environ[ENV_VAR] = self.host
        return self

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if self._saved is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = self._saved

    def __enter__(self) -> BigQueryEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> int:
    try:
        emulator = BigQueryEmulator().start()
    except BigQueryEmulatorUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"export {ENV_VAR}={emulator.host}")
    print("# BigQuery emulator running; Ctrl-C stops it", flush=True)
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
