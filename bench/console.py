"""Console page latency: the experiment page and the experiments list, side by side with the
JSON `GET /experiments/{id}/health` on the same data (its peer: the cheapest read a person could
make instead), each served by its own functions-framework process on the emulators.

50 running experiments (3 arms, 5 KPIs and guardrails each) with 100 sweep snapshots each.
Requests are interleaved round-robin (page, list, health, page, ...) so the three see the same
machine load. Goal: p95 <= 300 ms for the page and the list.

    python -m bench console [--experiments 50] [--snapshots 100] [--requests 60] [--quick]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from bench.harness import ROOT, served
from bench.sweep import _env_defaults, make_experiments, use_project

GOAL_MS = 300.0


def seed_snapshots(experiment_ids: list[str], count: int, seed: int = 11) -> int:
    """`count` sweep snapshots per experiment, five minutes apart, in the sweep's document shape."""
    from functions.adapters.firestore import EXPERIMENT_SNAPSHOTS, db
    from functions.services.experiments import repository
    from functions.services.sweep import snapshot_id

    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    writer = db().bulk_writer()
    written = 0
    for eid in experiment_ids:
        doc = repository.load(eid)
        arms = [v["key"] for v in doc["variants"]]
        for i in range(count):
            taken = now - timedelta(minutes=5 * (count - i))
            n = 100 * (i + 1)
            verdicts = []
            for g in doc.get("guardrails") or []:
                for arm in arms[1:]:
                    observed = 0.05 + rng.gauss(0, 0.01)
                    width = 0.5 / (i + 1) ** 0.5
                    limit = g.get("absoluteMax", g.get("maxRelativeDegradation"))
                    verdicts.append({"guardrail": g["metric"], "arm": arm, "action": g["action"], "status": "OK",
                                     "kind": "ABSOLUTE_MAX" if "absoluteMax" in g else "RELATIVE_DEGRADATION",
                                     "observed": observed, "bound": observed - width, "limit": limit,
                                     "detail": f"bound {observed - width:.4f} vs limit {limit}"})
            stats = {arm: {m: {"n": float(n), "sum_x": 50.0 * n, "sum_x2": 2600.0 * n, "sum_pre": 0.0,
                               "sum_pre2": 0.0, "sum_xpre": 0.0} for m in ("revenue", "refund", "churn")}
                     for arm in arms}
            writer.set(db().collection(EXPERIMENT_SNAPSHOTS).document(snapshot_id(eid, taken)), {
                "experimentId": eid, "windowStart": taken, "takenAt": taken, "state": "RUNNING",
                "rollout": doc.get("rollout"), "units": {arm: n for arm in arms}, "stats": stats,
                "guardrails": verdicts, "acted": None})
            written += 1
    writer.close()
    return written


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def measure(urls: dict[str, Any], session: dict[str, requests.Session], rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in urls}
    for i in range(rounds):
        for name, make in urls.items():
            url = make(i)
            started = time.perf_counter()
            resp = session[name].get(url, timeout=60)
            elapsed = 1000 * (time.perf_counter() - started)
            if resp.status_code != 200:
                raise RuntimeError(f"{name} {url} -> {resp.status_code}: {resp.text[:300]}")
            times[name].append(elapsed)
    return times


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench console")
    parser.add_argument("--experiments", type=int, default=50)
    parser.add_argument("--snapshots", type=int, default=100)
    parser.add_argument("--requests", type=int, default=60, help="timed requests per endpoint (after warm-up)")
    parser.add_argument("--quick", action="store_true", help="10 experiments, 100 snapshots, 20 requests")
    args = parser.parse_args(argv)
    if args.quick:
        args.experiments, args.requests = 10, 20
    _env_defaults()

    from bench.report import emit
    from functions.adapters.firestore import reset_client
    from functions.config import reset_settings
    from localdev.emulators import Emulators, EmulatorUnavailable
    from localdev.tokens import bearer, mint

    try:
        emulators = Emulators(project_id="demo-bench-console").start()
    except EmulatorUnavailable as exc:
        print(f"emulators unavailable: {exc}")
        return 2
    try:
        use_project("demo-bench-console")
        started = time.perf_counter()
        ids = make_experiments(args.experiments, "console")
        snaps = seed_snapshots(ids, args.snapshots)
        print(f"seeded {len(ids)} experiments and {snaps} snapshots in {time.perf_counter() - started:.1f} s")
        env = {**emulators.env(), "LOG_LEVEL": "WARNING"}
        with served("console", ROOT / "main.py", env, probe="/signin") as console, \
                served("experiments", ROOT / "main.py", env, probe="/healthz") as api:
            page = requests.Session()
            page.cookies.set("console_session", mint("bench-viewer", ["viewer"]))
            health = requests.Session()
            health.headers.update(bearer("bench-viewer", ["viewer"]))
            rng = random.Random(5)
            picks = [rng.choice(ids) for _ in range(args.requests + 5)]
            urls = {"experiment_page": lambda i: f"{console}/experiments/{picks[i]}",
                    "list": lambda i: f"{console}/experiments",
                    "api_health": lambda i: f"{api}/{picks[i]}/health"}
            sessions = {"experiment_page": page, "list": page, "api_health": health}
            measure(urls, sessions, 5)  # warm-up: imports, connections, caches
            times = measure(urls, sessions, args.requests)
            body = page.get(f"{console}/experiments/{ids[0]}", timeout=60).text
    finally:
        emulators.stop()
        reset_settings()
        reset_client()
    p95 = {k: round(_p(v, 0.95), 1) for k, v in times.items()}
    p50 = {k: round(statistics.median(v), 1) for k, v in times.items()}
    marks = body.count('class="point"')
    for name in times:
        print(f"{name:16s} p50 {p50[name]:7.1f} ms   p95 {p95[name]:7.1f} ms   ({len(times[name])} requests)")
    print(f"experiment page carries {body.count('<svg')} charts with {marks} snapshot points "
          f"({len(body) / 1024:.0f} KiB of HTML)")
    met = p95["experiment_page"] <= GOAL_MS and p95["list"] <= GOAL_MS
    emit("console", "ms p95 (experiment page)", p95["experiment_page"],
         {"api_health_p95_ms": p95["api_health"]},
         {"experiments": args.experiments, "snapshots_per_experiment": args.snapshots, "requests": args.requests,
          "goal_p95_ms": GOAL_MS},
         higher_is_better=False,
         extra={"list_p95_ms": p95["list"], "p50_ms": p50, "p95_ms": p95, "goal_met": met,
                "page_svg_points": marks, "page_kib": round(len(body) / 1024, 1)})
    return 0 if met else 1
