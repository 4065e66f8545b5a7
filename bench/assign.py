"""Assignment throughput of our full decision (global holdout + experiment variant + rollout
stage, in batches of 10,000 as the API takes them) vs the GrowthBook and Eppo Python SDKs
evaluating the equivalent setup locally (no network), for the same distinct unit ids.

    python -m bench assign [--units 200000] [--stage 0.25] [--quick]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter

from bench.report import emit
from functions.core.assignment.decision import (
    AssignmentConfig,
    ExperimentConfig,
    HoldoutCohortConfig,
    decide_columns,
)

HOLDOUT = 0.10
BATCH = 10_000


def ours(ids: list[str], stage: float) -> tuple[float, Counter]:
    config = AssignmentConfig(
        cohorts=(HoldoutCohortConfig("global", "global-holdout", HOLDOUT),),
        experiments=(ExperimentConfig("price-test", "price-test", (("control", 50), ("treatment", 50)),
                                      rollout_stage=stage),),
    )
    counts: Counter = Counter()
    started = time.perf_counter()
    for i in range(0, len(ids), BATCH):
        cols = decide_columns(config, ids[i:i + BATCH])
        arm = cols.variant[0]
        counts["control"] += int((arm == 0).sum())
        counts["treatment"] += int((arm == 1).sum())
        counts["holdout"] += int(cols.cohort_member[0].sum())
        counts["none"] += int(((arm < 0) & ~cols.cohort_member[0]).sum())
    return time.perf_counter() - started, counts


def growthbook(ids: list[str], stage: float) -> tuple[float, Counter]:
    from growthbook import Experiment, GrowthBook

    exp = Experiment(key="price-test", variations=["control", "treatment"], ranges=[(0.5, 1.0), (0.0, stage)],
                     namespace=("global-holdout", HOLDOUT, 1.0), hashVersion=2, seed="price-test")
    gb = GrowthBook(attributes={})
    counts: Counter = Counter()
    started = time.perf_counter()
    for uid in ids:
        gb.set_attributes({"id": uid})
        result = gb.run(exp)
        counts[result.value if result.inExperiment else "none"] += 1
    return time.perf_counter() - started, counts


def eppo_config(stage: float) -> bytes:
    def split(key: str, start: int, end: int) -> dict:
        return {"variationKey": key, "shards": [{"salt": "price-test-traffic", "ranges": [{"start": start,
                                                                                          "end": end}]}]}
    flag = {
        "key": "price-test", "enabled": True, "variationType": "STRING", "totalShards": 10000,
        "variations": {k: {"key": k, "value": k} for k in ("control", "treatment", "holdout")},
        "allocations": [
            {"key": "global-holdout", "rules": [], "doLog": False, "splits": [
                {"variationKey": "holdout", "shards": [{"salt": "global-holdout",
                                                        "ranges": [{"start": 0, "end": int(HOLDOUT * 10000)}]}]}]},
            {"key": "experiment", "rules": [], "doLog": True,
             "splits": [split("control", 5000, 10000), split("treatment", 0, int(stage * 10000))]},
        ],
    }
    return json.dumps({"createdAt": "2026-01-01T00:00:00Z", "format": "SERVER", "environment": {"name": "bench"},
                       "flags": {"price-test": flag}}).encode()


def eppo(ids: list[str], stage: float) -> tuple[float, Counter]:
    import eppo_client
    from eppo_client import Configuration as EppoConfiguration
    from eppo_client.config import AssignmentLogger, Config

    class Quiet(AssignmentLogger):
        def log_assignment(self, event):
            pass

    client = eppo_client.init(Config(api_key="offline", base_url="http://127.0.0.1:9", assignment_logger=Quiet(),
                                     poll_interval_seconds=None,
                                     initial_configuration=EppoConfiguration(flags_configuration=eppo_config(stage))))
    counts: Counter = Counter()
    started = time.perf_counter()
    for uid in ids:
        counts[client.get_string_assignment("price-test", uid, {}, "none")] += 1
    return time.perf_counter() - started, counts


def plausible(counts: Counter, n: int, stage: float) -> bool:
    """Each engine must really assign: control ~45%, treatment ~stage*90% of units."""
    return abs(counts["control"] / n - 0.5 * (1 - HOLDOUT)) < 0.02 and abs(
        counts["treatment"] / n - stage * (1 - HOLDOUT)) < 0.02


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench assign")
    parser.add_argument("--units", type=int, default=200_000)
    parser.add_argument("--stage", type=float, default=0.25)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    n = 20_000 if args.quick else args.units
    ids = [f"user-{i:08d}" for i in range(n)]
    results = {}
    for name, fn in (("ours", ours), ("growthbook", growthbook), ("eppo", eppo)):
        seconds, counts = fn(ids, args.stage)
        ok = plausible(counts, n, args.stage)
        results[name] = (n / seconds, ok, dict(counts))
        print(f"{name:11s} {n / seconds:12,.0f} units/s  split {dict(counts)}  plausible={ok}")
    if not all(ok for _, ok, _ in results.values()):
        print("an engine did not assign as configured; figures are not comparable")
        return 1
    emit("assign", "units/s", round(results["ours"][0]),
         {"growthbook": round(results["growthbook"][0]), "eppo": round(results["eppo"][0])},
         {"units": n, "stage": args.stage, "holdout": HOLDOUT, "batch": BATCH},
         extra={"splits": {k: v[2] for k, v in results.items()}})
    return 0
