"""Real server processes for end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from localdev.emulators import free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    base_url: str

    @classmethod
    def start(cls, cmd: list[str], env: dict[str, str], port: int, probe: str) -> ServerProcess:
        log = open(ROOT / ".run" / f"server-{port}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited early: {' '.join(cmd)}; see {log.name}")
            try:
                requests.get(base + probe, timeout=1)
                return cls(proc, base)
            except requests.RequestException:
                time.sleep(0.2)
        proc.kill()
        raise RuntimeError(f"server did not answer: {' '.join(cmd)}")

    @classmethod
    def functions_framework(cls, target: str, env: dict[str, str]) -> ServerProcess:
        port = free_port()
        (ROOT / ".run").mkdir(exist_ok=True)
        cmd = [
            sys.executable, "-m", "functions_framework",
            "--target", target, "--source", str(ROOT / "main.py"), "--host", "127.0.0.1", "--port", str(port),
        ]
        return cls.start(cmd, env, port, "/healthz")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
