"""Single-request latency of the `assign` HTTP function for one unit, under wrk on loopback,
with the Firestore and Pub/Sub emulators running (a frozen cohort with a CLUSTER policy, so
each request makes the one sticky-override read, and one RUNNING experiment).

    python -m bench assign_http [--seconds 10] [--connections 1] [--quick]

`http_latency(url, headers)` is the reusable part (bench/assign.py may call it). The peer is
the same server's unauthenticated /healthz: the cost of functions-framework itself.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from bench.harness import ROOT, WrkResult, served, wrk
from bench.report import emit

BODY = {"unitId": "bench-unit-1", "attributes": {"region": "EU", "platform": "ios"}}


def http_latency(url: str, headers: dict[str, str], body: dict | None = None, seconds: int = 10,
                 connections: int = 1) -> WrkResult:
    """wrk POSTing one unit to `url`; returns requests/s and p50/p99 in ms."""
    payload = json.dumps(body or BODY)
    script = (
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(payload)}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(script)
    try:
        return wrk(url, seconds, connections, threads=1, headers=headers, script=Path(fh.name))
    finally:
        os.unlink(fh.name)


def _seed() -> None:
    from functions.adapters.firestore import OFFER_EXPERIMENTS, db
    from functions.models.holdouts import CohortCreate, FreezeRequest
    from functions.services.holdouts import cohorts

    actor = {"uid": "bench", "role": "pm"}
    cohort = cohorts.create(CohortCreate(name="bench holdout", percentage=10, salt="bench-salt",
                                         spilloverPolicies={"SHARED_WALLET": "CLUSTER"}), actor)
    cohorts.freeze(cohort.id, FreezeRequest(), actor)
    db().collection(OFFER_EXPERIMENTS).document("bench-exp").set({
        "state": "RUNNING", "salt": "bench-exp-salt", "hashVersion": 1,
        "variants": [{"key": "control", "weight": 0.5}, {"key": "treatment", "weight": 0.5}],
        "targeting": [], "holdoutCohortId": cohort.id, "layer": "pricing", "layerRange": [0.0, 1.0],
        "offerType": "PRICE_CHANGE", "restrictedRegions": [],
        "rollout": {"stage": 0.5, "maxStageReached": 0.5, "status": "ACTIVE"},
    })


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench assign_http")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    seconds = 3 if args.quick else args.seconds
    os.environ.setdefault("GOOGLE_CLOUD_PROJECT", "demo-offers-bench")
    from functions.adapters.firestore import reset_client
    from functions.adapters.pubsub import ensure_topics
    from functions.config import reset_settings
    from localdev.emulators import Emulators
    from localdev.tokens import mint

    with Emulators(project_id=os.environ["GOOGLE_CLOUD_PROJECT"]) as emu:
        env = {**emu.env(), "LOG_LEVEL": "WARNING", "GOOGLE_CLOUD_PROJECT": os.environ["GOOGLE_CLOUD_PROJECT"]}
        os.environ.update(env)
        reset_settings()
        reset_client()
        ensure_topics()
        _seed()
        token = mint("bench-svc", ["service"], project=env["GOOGLE_CLOUD_PROJECT"])
        with served("assign", ROOT / "main.py", env, probe="/healthz") as base:
            peer = wrk(base + "/healthz", seconds, args.connections, threads=1)
            ours = http_latency(base + "/", {"Authorization": f"Bearer {token}"}, seconds=seconds,
                                connections=args.connections)
    print(f"assign one unit: p50 {ours.p50_ms:.2f} ms  p99 {ours.p99_ms:.2f} ms  "
          f"{ours.requests_per_second:.0f} req/s  errors {ours.errors}")
    print(f"/healthz (framework floor): p50 {peer.p50_ms:.2f} ms  p99 {peer.p99_ms:.2f} ms")
    emit(
        "assign_http", "ms p50", ours.p50_ms, {"functions_framework_healthz": peer.p50_ms},
        {"seconds": seconds, "connections": args.connections, "threads": 1, "route": "POST /assign (1 unit)"},
        higher_is_better=False,
        extra={"latency_ms": {"ours": {"p50": ours.p50_ms, "p99": ours.p99_ms},
                              "functions_framework_healthz": {"p50": peer.p50_ms, "p99": peer.p99_ms}},
               "requests_per_second": {"ours": ours.requests_per_second, "healthz": peer.requests_per_second},
               "errors": ours.errors},
    )
    return 0
