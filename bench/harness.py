"""Shared benchmark plumbing: serve a function in a real functions-framework process and load
it with wrk on loopback (bounded duration)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from localdev.emulators import free_port

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int

    def to_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


@contextmanager
def served(target: str, source: Path, env: dict[str, str] | None = None, probe: str = "/") -> Iterator[str]:
    port = free_port()
    (ROOT / ".run").mkdir(exist_ok=True)
    log = open(ROOT / ".run" / f"bench-{target}.log", "wb")  # noqa: SIM115
    cmd = [sys.executable, "-m", "functions_framework", "--target", target, "--source", str(source),
           "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(base + probe, timeout=1)
                break
            except requests.RequestException:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{target} did not start; see {log.name}") from None
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, seconds: int = 10, connections: int = 16, threads: int = 2,
        headers: dict[str, str] | None = None, script: Path | None = None) -> WrkResult:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk (scripts/setup.sh does it when it can)")
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{min(seconds, 10)}s", "--latency"]
    for key, value in (headers or {}).items():
        cmd += ["-H", f"{key}: {value}"]
    if script:
        cmd += ["-s", str(script)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=seconds + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+(?:us|ms|s))", out, re.M))
    def parse(v: str) -> float:
        m = re.match(r"([\d.]+)(us|ms|s)", v)
        return _ms(m.group(1), m.group(2))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", out))
    errors += sum(int(n) for n in re.findall(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                                              out)[0]) if "Socket errors" in out else 0
    return WrkResult(rps, parse(lat["50"]), parse(lat["99"]), total, errors)
