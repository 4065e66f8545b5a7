"""Start Google's Firestore and Pub/Sub emulators on free loopback ports, or reuse running ones.

Used by the run command, the test suite and the benches. If FIRESTORE_EMULATOR_HOST and
PUBSUB_EMULATOR_HOST are already set (e.g. `firebase emulators:start` from firebase.json),
those are used and nothing is started or stopped. Otherwise the emulators from the Debian
packages `google-cloud-cli-firestore-emulator` and `google-cloud-cli-pubsub-emulator` run
under Java 17, each in its own process group, and are stopped by PID on exit, on Ctrl-C and
on test failure.

    python -m localdev.emulators      # start both, print the exports, wait for Ctrl-C
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SDK_ROOTS = [Path(p) for p in os.environ.get("CLOUDSDK_ROOTS", "").split(":") if p] + [
    Path("/usr/lib/google-cloud-sdk"),
    Path("/usr/share/google-cloud-sdk"),
    Path("/opt/google-cloud-sdk"),
    Path.home() / "google-cloud-sdk",
]
FIRESTORE_JAR = "platform/cloud-firestore-emulator/cloud-firestore-emulator.jar"
PUBSUB_LAUNCHER = "platform/pubsub-emulator/bin/cloud-pubsub-emulator"
DEFAULT_PROJECT = "demo-offers"
AUTH_PLACEHOLDER = "127.0.0.1:9099"  # only its presence matters: the Admin SDK then accepts unsigned tokens
HOW_TO_INSTALL = (
    "Install Google's emulators and Java 17, e.g. on Debian/Ubuntu with the Google Cloud apt repository:\n"
    "  sudo apt-get install google-cloud-cli-firestore-emulator google-cloud-cli-pubsub-emulator "
    "openjdk-17-jre-headless\n"
    "or point FIRESTORE_EMULATOR_HOST and PUBSUB_EMULATOR_HOST at running emulators "
    "(e.g. `firebase emulators:start --only firestore,pubsub`)."
)


class EmulatorUnavailable(RuntimeError):
    """The emulators can neither be found nor reached; the message says what is missing."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _find(relative: str) -> Path | None:
    for root in SDK_ROOTS:
        candidate = root / relative
        if candidate.exists():
            return candidate
    return None


def _java_major(java: str) -> int:
    out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    for token in out.replace('"', " ").split():
        head = token.split(".")[0]
        if head.isdigit() and token[0].isdigit():
            major = int(head)
            return int(token.split(".")[1]) if major == 1 else major
    return 0


def _answers(host: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}/", timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException):
        return False  # not up yet, or something that is not an HTTP/1 emulator answered (e.g. gRPC)


@dataclass
class Emulators:
    project_id: str = DEFAULT_PROJECT
    rules_file: Path = ROOT / "firestore.rules"
    log_dir: Path = ROOT / ".run"
    firestore_host: str = ""
    pubsub_host: str = ""
    external: bool = False
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _saved_env: dict[str, str | None] = field(default_factory=dict)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> Emulators:
        fs, ps = os.environ.get("FIRESTORE_EMULATOR_HOST"), os.environ.get("PUBSUB_EMULATOR_HOST")
        if fs and ps:
            if not (_answers(fs) and _answers(ps)):
                raise EmulatorUnavailable(
                    f"FIRESTORE_EMULATOR_HOST={fs} / PUBSUB_EMULATOR_HOST={ps} are set but do not answer. "
                    "Start them, or unset both variables to let this harness start its own."
                )
            self.firestore_host, self.pubsub_host, self.external = fs, ps, True
            self.project_id = os.environ.get("GOOGLE_CLOUD_PROJECT", self.project_id)
            self._export()
            return self
        java, jar, launcher = self._locate()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        fs_port, ps_port = free_port(), free_port()
        self.firestore_host, self.pubsub_host = f"127.0.0.1:{fs_port}", f"127.0.0.1:{ps_port}"
        atexit.register(self.stop)
        self._spawn(
            "firestore",
            [
                java,
                "-Duser.language=en",
                "-cp",
                str(jar),
                "com.google.cloud.datastore.emulator.firestore.CloudFirestore",
                "start",
                "--host=127.0.0.1",
                f"--port={fs_port}",
                f"--rules={self.rules_file}",
                f"--project_id={self.project_id}",
            ],
            env={},
        )
        self._spawn(
            "pubsub",
            [str(launcher), "--host=127.0.0.1", f"--port={ps_port}"],
            env={"JAVA_HOME": str(Path(java).resolve().parent.parent)},
        )
        deadline = time.monotonic() + timeout
        pending = {"firestore": self.firestore_host, "pubsub": self.pubsub_host}
        while pending and time.monotonic() < deadline:
            for name, host in list(pending.items()):
                if self.processes[name].poll() is not None:
                    self.stop()
                    raise EmulatorUnavailable(f"{name} emulator exited early; see {self.log_dir / name}.log")
                if _answers(host):
                    del pending[name]
            time.sleep(0.2)
        if pending:
            self.stop()
            raise EmulatorUnavailable(f"emulators did not answer within {timeout:.0f}s: {sorted(pending)}")
        self._export()
        return self

    def _locate(self) -> tuple[str, Path, Path]:
        missing = []
        java = shutil.which("java")
        if not java:
            missing.append("java (Java 17 runtime, Debian package openjdk-17-jre-headless)")
        elif _java_major(java) < 11:
            missing.append(f"Java 11+ (found {java} reporting an older version; install openjdk-17-jre-headless)")
        jar = _find(FIRESTORE_JAR)
        if not jar:
            missing.append(
                f"Firestore emulator jar ({FIRESTORE_JAR}; Debian package google-cloud-cli-firestore-emulator)"
            )
        launcher = _find(PUBSUB_LAUNCHER)
        if not launcher:
            missing.append(f"Pub/Sub emulator ({PUBSUB_LAUNCHER}; Debian package google-cloud-cli-pubsub-emulator)")
        if missing:
            raise EmulatorUnavailable(
                "cannot start the emulators; missing:\n  - " + "\n  - ".join(missing) + "\n" + HOW_TO_INSTALL
            )
        assert java and jar and launcher
        return java, jar, launcher

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str]) -> None:
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
        self.processes[name] = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **env},
            start_new_session=True,  # own process group: stop() kills the launcher and its java child
        )
        record = os.environ.get("EMULATOR_PIDS_FILE")
        if record:  # lets the test command prove afterwards that nothing was left running
            with open(record, "a") as fh:
                fh.write(f"{self.processes[name].pid}\n")

    def _export(self) -> None:
        """Export the variables the clients read; stop() puts the previous values back."""
        wanted = {
            "FIRESTORE_EMULATOR_HOST": self.firestore_host,
            "PUBSUB_EMULATOR_HOST": self.pubsub_host,
            "GOOGLE_CLOUD_PROJECT": self.project_id,
            "GCLOUD_PROJECT": self.project_id,
            "FIREBASE_AUTH_EMULATOR_HOST": os.environ.get("FIREBASE_AUTH_EMULATOR_HOST") or AUTH_PLACEHOLDER,
        }
        for key, value in wanted.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self.processes.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self.processes.clear()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes.values()]

    def __enter__(self) -> Emulators:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers ----------------------------------------------------------------------------

    def clear_firestore(self) -> None:
        """The emulator's documented reset endpoint: delete every document of the project."""
        url = (
            f"http://{self.firestore_host}/emulator/v1/projects/{self.project_id}"
            "/databases/(default)/documents"
        )
        req = urllib.request.Request(url, method="DELETE")
        with urllib.request.urlopen(req, timeout=30) as resp:
            resp.read()

    def env(self) -> dict[str, str]:
        return {
            "FIRESTORE_EMULATOR_HOST": self.firestore_host,
            "PUBSUB_EMULATOR_HOST": self.pubsub_host,
            "GOOGLE_CLOUD_PROJECT": self.project_id,
            "GCLOUD_PROJECT": self.project_id,
            "FIREBASE_AUTH_EMULATOR_HOST": os.environ.get("FIREBASE_AUTH_EMULATOR_HOST", AUTH_PLACEHOLDER),
        }


def main() -> int:
    try:
        emulators = Emulators().start()
    except EmulatorUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for key, value in emulators.env().items():
        print(f"export {key}={value}")
    print("# emulators running; Ctrl-C stops them", flush=True)
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        emulators.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
