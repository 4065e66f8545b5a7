"""HTTP overhead of our shared plumbing: an authenticated route of ours (token verification,
routing, request id, structured log, JSON envelope) vs a bare functions-framework function,
both served by functions-framework's own server and loaded by wrk on loopback.

    python -m bench http [--seconds 10] [--connections 16]
"""

from __future__ import annotations

import argparse
import os

from bench.harness import ROOT, served, wrk
from bench.report import emit
from localdev.emulators import AUTH_PLACEHOLDER
from localdev.tokens import mint


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench http")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args(argv)
    env = {"FIREBASE_AUTH_EMULATOR_HOST": AUTH_PLACEHOLDER, "LOG_LEVEL": "WARNING",
           "GOOGLE_CLOUD_PROJECT": os.environ.get("GOOGLE_CLOUD_PROJECT", "demo-offers")}
    token = mint("bench-user", ["viewer"], project=env["GOOGLE_CLOUD_PROJECT"])
    with served("hello", ROOT / "bench" / "_hello_function.py", env) as base:
        peer = wrk(base + "/", args.seconds, args.connections)
    with served("experiments", ROOT / "main.py", env, probe="/healthz") as base:
        ours = wrk(base + "/whoami", args.seconds, args.connections, headers={"Authorization": f"Bearer {token}"})
    print(f"bare functions-framework hello: {peer.requests_per_second:8.0f} req/s  p50 {peer.p50_ms:.2f} ms  "
          f"p99 {peer.p99_ms:.2f} ms")
    print(f"ours GET /whoami (auth+route):  {ours.requests_per_second:8.0f} req/s  p50 {ours.p50_ms:.2f} ms  "
          f"p99 {ours.p99_ms:.2f} ms  errors {ours.errors}")
    emit(
        "http",
        "requests/s",
        round(ours.requests_per_second, 1),
        {"functions_framework_hello": round(peer.requests_per_second, 1)},
        {"seconds": args.seconds, "connections": args.connections, "threads": 2, "route": "GET /whoami"},
        higher_is_better=True,
        extra={"latency_ms": {"ours": {"p50": ours.p50_ms, "p99": ours.p99_ms},
                              "functions_framework_hello": {"p50": peer.p50_ms, "p99": peer.p99_ms}},
               "errors": {"ours": ours.errors, "functions_framework_hello": peer.errors}},
    )
    return 0
