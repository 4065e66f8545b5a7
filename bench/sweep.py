"""The scheduled sweep's cost does not grow with units; KPI ingestion throughput, 10 shards vs 1.

(1) N RUNNING experiments (3 variants x 5 metrics, a rollout plan each) are made through the
    service layer (create, plan, submit, approve, start: ledger entries, events and outbox as in
    production). Their sharded sufficient-statistics aggregates are then written directly, in the
    shape KPI ingestion writes (`offerExperiments/{id}/aggregates/{variant}__{metric}__{shard}`),
    with shard sums as if 10,000 or 1,000,000 units per experiment had been ingested (drawn from
    the sums' sampling distributions, not by ingesting events). Each level lives in its own
    emulator project, and the production `run_sweep()` (snapshots, guardrails, rollout
    progression, checkpoint, outbox) runs against them alternately: seconds per sweep at 1M and
    10k units, ratio ~1 (best of the rounds, since other processes share the cores, and the
    median ratio of back-to-back pairs).
(2) KPI ingestion through `ingest_one()` (what the Pub/Sub handler and the HTTP batch route call),
    concurrent workers for a bounded time, KPI_SHARDS=10 vs KPI_SHARDS=1: events/s.

    python -m bench sweep [--experiments 200] [--rounds 3] [--ingest-seconds 15] [--workers 8] [--quick]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("control", "treatment-a", "treatment-b")
# metric -> (type, mean, sd, correlation with the pre-period value); sd unused for proportions
METRICS: dict[str, tuple[str, float, float, float]] = {
    "revenue": ("MEAN", 4.0, 12.0, 0.6),
    "conversion": ("PROPORTION", 0.12, 0.0, 0.3),
    "sessions": ("MEAN", 6.0, 4.0, 0.7),
    "refund": ("PROPORTION", 0.03, 0.0, 0.2),
    "churn": ("PROPORTION", 0.05, 0.0, 0.4),
}
LEVELS = {"10k": 10_000, "1M": 1_000_000}


def _env_defaults() -> None:
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("LEDGER_KEY_FILE", str(ROOT / ".run" / "ledger-bench-key.pem"))
    os.environ.setdefault("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099")


def use_project(project_id: str) -> None:
    """Point settings, the Firestore client and the caches at another emulator project."""
    from functions.adapters.firestore import reset_client
    from functions.adapters.pubsub import ensure_topics
    from functions.config import reset_settings
    from functions.services.experiments import repository

    os.environ["GOOGLE_CLOUD_PROJECT"] = os.environ["GCLOUD_PROJECT"] = project_id
    reset_settings()
    reset_client()
    repository.invalidate()
    ensure_topics()


# -- experiments, through the service layer ------------------------------------------------


def _principals():
    from functions.adapters.auth import Principal

    return Principal("bench-pm", frozenset({"pm"})), Principal("bench-approver", frozenset({"approver"}))


def frozen_cohort() -> str:
    from functions.models.holdouts import CohortCreate, FreezeRequest
    from functions.services.holdouts import cohorts

    pm, _ = _principals()
    cohort = cohorts.create(CohortCreate(name="bench global holdout", percentage=10.0), pm.to_dict())
    cohorts.freeze(cohort.id, FreezeRequest(reason="bench"), pm.to_dict())
    return cohort.id


def definition(experiment_id: str, cohort_id: str) -> dict[str, Any]:
    _, approver = _principals()
    return {
        "id": experiment_id, "name": f"Sweep bench {experiment_id}",
        "hypothesis": {"statement": "A lower annual price lifts revenue without more refunds or churn"},
        "offerType": "PRICE_CHANGE", "offerConfig": {"oldPrice": 49.99, "currency": "EUR"},
        "variants": [{"key": "control", "weight": 1, "offer": {"price": 49.99}},
                     {"key": "treatment-a", "weight": 1, "offer": {"price": 44.99}},
                     {"key": "treatment-b", "weight": 1, "offer": {"price": 39.99}}],
        "holdoutCohortId": cohort_id,
        "kpis": [{"metric": "revenue", "role": "PRIMARY", "type": "MEAN"},
                 {"metric": "conversion", "role": "SECONDARY", "type": "PROPORTION"},
                 {"metric": "sessions", "role": "SECONDARY", "type": "MEAN"}],
        "guardrails": [{"metric": "refund", "harmfulDirection": "INCREASE", "absoluteMax": 0.08, "action": "KILL"},
                       {"metric": "churn", "harmfulDirection": "INCREASE", "maxRelativeDegradation": 0.5,
                        "action": "PAUSE"}],
        "requiredApprovers": [approver.uid],
    }


def running_experiment(experiment_id: str, cohort_id: str) -> str:
    """DRAFT -> rollout plan -> submitted -> approved (four eyes) -> RUNNING."""
    from functions.models.experiments import CreateExperiment
    from functions.models.rollouts import PlanRequest
    from functions.services.experiments import approvals, definitions, start
    from functions.services.rollouts import plans

    pm, approver = _principals()
    doc = definitions.create(CreateExperiment.model_validate(definition(experiment_id, cohort_id)), pm.to_dict())
    plans.put_plan(doc["id"], PlanRequest(), pm.to_dict())
    approvals.submit(doc["id"], pm.to_dict())
    approvals.approve(doc["id"], approver)
    after = start.start(doc["id"], pm.to_dict())
    if after["state"] != "RUNNING":
        raise RuntimeError(f"{experiment_id} is {after['state']}, not RUNNING")
    return doc["id"]


def make_experiments(n: int, prefix: str, parallel: int = 4) -> list[str]:
    cohort_id = frozen_cohort()
    with ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(lambda i: running_experiment(f"{prefix}-{i:04d}", cohort_id), range(n)))


def drain_outbox() -> int:
    from functions.adapters import outbox

    total = 0
    while sent := outbox.flush_all():
        total += sent
    return total


# -- aggregates as if `units` units had been ingested ---------------------------------------


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _noise(rng: random.Random, n: int) -> float:
    return 1.0 + rng.gauss(0.0, 1.0) / math.sqrt(max(n, 1))


def shard_stats(rng: random.Random, kind: str, mean: float, sd: float, rho: float, n: int) -> dict[str, float]:
    """The six sums of n units (CLT draws; Σx² etc. with a relative error of 1/sqrt(n))."""
    if kind == "PROPORTION":
        both = mean * mean + rho * mean * (1 - mean)  # P(x = 1 and pre = 1)
        def binom(p: float) -> float:
            return float(max(0, min(n, round(rng.gauss(n * p, math.sqrt(n * p * (1 - p)))))))
        x, pre = binom(mean), binom(mean)
        return {"n": float(n), "sum_x": x, "sum_x2": x, "sum_pre": pre, "sum_pre2": pre,
                "sum_xpre": min(x, pre, binom(both))}
    def total(m: float, s: float) -> float:
        return max(0.0, rng.gauss(n * m, s * math.sqrt(n)))
    second = sd * sd + mean * mean
    return {"n": float(n), "sum_x": total(mean, sd), "sum_x2": n * second * _noise(rng, n),
            "sum_pre": total(mean, sd), "sum_pre2": n * second * _noise(rng, n),
            "sum_xpre": n * (rho * sd * sd + mean * mean) * _noise(rng, n)}


def seed_aggregates(experiment_ids: list[str], units: int, shards: int, seed: int = 7) -> int:
    """Write every shard document directly (ingestion's document id, fields and numbers)."""
    from google.cloud.firestore_v1.bulk_writer import BulkWriterOptions, SendMode

    from functions.adapters.firestore import db
    from functions.services.experiments import repository
    from functions.services.experiments.kpi import aggregate_id

    rng = random.Random(seed)
    # the default 500 ops/s ramp is for a live database; the emulator takes what it can
    writer = db().bulk_writer(options=BulkWriterOptions(initial_ops_per_second=50_000, max_ops_per_second=50_000,
                                                        mode=SendMode.parallel))
    failures: list[str] = []
    writer.on_write_error(lambda failure, _w: failure.attempts < 5 or bool(failures.append(failure.message)))
    written = 0
    for eid in experiment_ids:
        aggregates = repository.ref(eid).collection(repository.AGGREGATES)
        for variant, arm_units in zip(VARIANTS, _split(units, len(VARIANTS)), strict=True):
            for metric, (kind, mean, sd, rho) in METRICS.items():
                for shard, n in enumerate(_split(arm_units, shards)):
                    doc = {"variant": variant, "metric": metric, "shard": shard,
                           **shard_stats(rng, kind, mean, sd, rho, n)}
                    writer.set(aggregates.document(aggregate_id(variant, metric, shard)), doc)
                    written += 1
    writer.close()
    if failures:
        raise RuntimeError(f"seeding failed: {failures[0]}")
    return written


# -- the sweep ---------------------------------------------------------------------------

_reads = [0]


def count_document_reads() -> None:
    """Count every document the client materialises (gets, streams, transactions): the noise-free
    view of a sweep's cost when other processes share the cores. Instrumentation only."""
    from google.cloud.firestore_v1.base_document import DocumentSnapshot

    if getattr(DocumentSnapshot.__init__, "_bench_counted", False):
        return
    original = DocumentSnapshot.__init__

    def counted(self, *args: Any, **kwargs: Any) -> None:
        _reads[0] += 1
        original(self, *args, **kwargs)

    counted._bench_counted = True  # type: ignore[attr-defined]
    DocumentSnapshot.__init__ = counted  # type: ignore[method-assign]



def timed_sweep(now: datetime, n_experiments: int, units: int) -> tuple[float, int, list[str]]:
    """One production sweep; returns its seconds, the documents it read and whatever made it
    not a like-for-like run."""
    from functions.adapters.firestore import EXPERIMENT_SNAPSHOTS, db
    from functions.services.sweep import run_sweep

    reads_before = _reads[0]
    started = time.perf_counter()
    summary = run_sweep(now)
    seconds = time.perf_counter() - started
    reads = _reads[0] - reads_before
    problems = []
    results = summary["experiments"]
    if len(results) != n_experiments:
        problems.append(f"swept {len(results)} experiments, expected {n_experiments}")
    bad = [r for r in results if r.get("error") or r.get("skipped") or r.get("acted")]
    if bad:
        problems.append(f"{len(bad)} experiments errored, were skipped or acted: {bad[:2]}")
    if len(summary["rollouts"]) != n_experiments:
        problems.append(f"{len(summary['rollouts'])} rollout steps, expected {n_experiments}")
    if results and not problems:
        snap = db().collection(EXPERIMENT_SNAPSHOTS).document(results[0]["snapshot"]).get().to_dict() or {}
        seen = round(sum(snap.get("units", {}).values()))
        if seen != units:
            problems.append(f"snapshot counts {seen} units, seeded {units}")
        if len(snap.get("guardrails") or []) != 2 * (len(VARIANTS) - 1):
            problems.append(f"snapshot has {len(snap.get('guardrails') or [])} guardrail verdicts")
    return seconds, reads, problems


def sweep_bench(n_experiments: int, rounds: int, shards: int) -> dict[str, Any]:
    from functions.config import settings
    from functions.services.ledger.checkpoints import create_checkpoint
    from functions.services.sweep import run_sweep

    # warm-up in a project of its own (emulator JIT, first queries, client paths), not timed
    use_project("demo-bench-sweep-warmup")
    warm = make_experiments(min(10, n_experiments), "warm")
    seed_aggregates(warm, 1_000, shards)
    run_sweep()
    projects = {level: f"demo-bench-sweep-{level.lower()}" for level in LEVELS}
    for level, units in LEVELS.items():
        use_project(projects[level])
        started = time.perf_counter()
        ids = make_experiments(n_experiments, "sweep")
        made = time.perf_counter() - started
        started = time.perf_counter()
        docs = seed_aggregates(ids, units, shards, seed=units)
        seeded = time.perf_counter() - started
        # what a first sweep would also do once: publish the setup's outbox, checkpoint its ledger entries
        checkpoint = create_checkpoint() or {}
        published = drain_outbox()
        print(f"setup {level:>3s}: {n_experiments} RUNNING experiments in {made:.1f}s (service layer), "
              f"{docs:,} aggregate shards for {units:,} units each in {seeded:.1f}s, "
              f"{published} outbox messages published, ledger checkpoint of {checkpoint.get('treeSize')} entries",
              flush=True)
    window = timedelta(seconds=settings().sweep_window_seconds)  # a new window per sweep: a new snapshot
    base = datetime.now(UTC)
    times: dict[str, list[float]] = {level: [] for level in LEVELS}
    reads: dict[str, set[int]] = {level: set() for level in LEVELS}
    paired: list[float] = []  # 1M/10k within one round: the two sweeps ran back to back
    load: list[float] = []
    problems: list[str] = []
    for r in range(1, rounds + 1):
        order = list(LEVELS) if r % 2 else list(reversed(LEVELS))
        this_round = {}
        for level in order:
            use_project(projects[level])
            seconds, docs_read, issues = timed_sweep(base + window * (r + 1), n_experiments, LEVELS[level])
            reads[level].add(docs_read)
            problems += [f"{level} round {r}: {p}" for p in issues]
            load.append(os.getloadavg()[0])
            print(f"sweep {level:>3s} round {r}  {seconds:7.2f} s  ({1000 * seconds / n_experiments:.1f} ms "
                  f"per experiment, {docs_read:,} documents read, load average {load[-1]:.1f})"
                  f"{'  ' + '; '.join(issues) if issues else ''}", flush=True)
            this_round[level] = seconds
        for level, seconds in this_round.items():
            times[level].append(seconds)
        paired.append(this_round["1M"] / this_round["10k"])
    return {"times": times, "reads": {k: sorted(v) for k, v in reads.items()}, "paired": paired, "load": load,
            "problems": problems}


# -- KPI ingestion -----------------------------------------------------------------------


def ingest_bench(shards: int, workers: int, units_per_worker: int, seconds: float) -> dict[str, Any]:
    from functions.config import reset_settings
    from functions.models.experiments import KpiEvent
    from functions.services.experiments import aggregates, repository
    from functions.services.experiments.kpi import ingest_one
    from functions.services.holdouts.exposures import record_exposures

    os.environ["KPI_SHARDS"] = str(shards)
    use_project(f"demo-bench-kpi-{shards}-shards")
    reset_settings()
    eid = make_experiments(1, "kpi")[0]
    units = [[f"w{w}-u{i:05d}" for i in range(units_per_worker)] for w in range(workers)]
    rows = [{"unitId": u, "experimentId": eid, "variant": VARIANTS[i % len(VARIANTS)], "inHoldout": False,
             "status": "ASSIGNED"} for mine in units for i, u in enumerate(mine)]
    record_exposures(rows, datetime.now(UTC) - timedelta(minutes=5))
    repository.invalidate()
    metrics = list(METRICS)
    outcomes: Counter = Counter()
    firsts: list[set[tuple[str, str]]] = [set() for _ in range(workers)]
    errors: list[str] = []
    lock = threading.Lock()
    deadline = [0.0]
    start_line = threading.Barrier(workers + 1)

    def worker(w: int) -> None:
        rng = random.Random(w)
        mine, seen, k = units[w], firsts[w], 0
        local: Counter = Counter()
        start_line.wait()
        while time.perf_counter() < deadline[0]:
            unit = mine[k % len(mine)]  # a worker owns its units: no two in-flight events share a unit
            metric = rng.choice(metrics)
            event = KpiEvent.model_validate({
                "eventId": f"evt-s{shards}-w{w}-{k}", "unitId": unit, "metric": metric,
                "value": round(rng.expovariate(0.25), 2) if METRICS[metric][0] == "MEAN" else 1.0,
                "timestamp": (datetime.now(UTC) - timedelta(seconds=1)).isoformat()})
            k += 1
            try:
                outcome = ingest_one(event)
            except Exception as exc:  # counted, not fatal: a benchmark reports what happened
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                continue
            local[outcome] += 1
            if outcome == "ACCEPTED":
                seen.add((unit, metric))
        with lock:
            outcomes.update(local)

    threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(workers)]
    for t in threads:
        t.start()
    deadline[0] = time.perf_counter() + seconds
    began = time.perf_counter()
    start_line.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    stats = aggregates.read(eid)
    stored_n = sum(s.n for metrics_ in stats.values() for s in metrics_.values())
    expected_n = sum(len(s) for s in firsts)
    from functions.services.experiments.repository import AGGREGATES, ref

    shard_ids = {s.get("shard") for s in ref(eid).collection(AGGREGATES).stream()}
    return {"shards": shards, "events_per_s": outcomes["ACCEPTED"] / elapsed, "seconds": elapsed,
            "outcomes": dict(outcomes), "errors": len(errors), "first_error": errors[0] if errors else None,
            "shards_used": len(shard_ids), "consistent": stored_n == expected_n,
            "units_n_stored": stored_n, "units_n_expected": expected_n}


# -- main --------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench sweep")
    parser.add_argument("--experiments", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="timed sweeps per units level (after a warm-up)")
    parser.add_argument("--shards", type=int, default=10, help="aggregate shards seeded per variant x metric")
    parser.add_argument("--ingest-seconds", type=float, default=15.0)
    parser.add_argument("--workers", type=int, default=8, help="concurrent KPI ingestion workers")
    parser.add_argument("--units-per-worker", type=int, default=250)
    parser.add_argument("--quick", action="store_true", help="20 experiments, 2 rounds, 4 s of ingestion")
    args = parser.parse_args(argv)
    if args.quick:
        args.experiments, args.rounds, args.ingest_seconds, args.units_per_worker = 20, 2, 4.0, 100
    _env_defaults()
    saved_shards = os.environ.get("KPI_SHARDS")

    from bench.report import emit
    from functions.adapters.firestore import reset_client
    from functions.config import reset_settings
    from localdev.emulators import Emulators, EmulatorUnavailable

    try:
        emulators = Emulators(project_id="demo-bench-sweep").start()
    except EmulatorUnavailable as exc:
        print(f"emulators unavailable: {exc}")
        return 2
    count_document_reads()
    try:
        sweep = sweep_bench(args.experiments, args.rounds, args.shards)
        ingest = {s: ingest_bench(s, args.workers, args.units_per_worker, args.ingest_seconds) for s in (10, 1)}
    finally:
        if saved_shards is None:
            os.environ.pop("KPI_SHARDS", None)
        else:
            os.environ["KPI_SHARDS"] = saved_shards
        emulators.stop()
        reset_settings()
        reset_client()

    # Other processes share the cores: the least disturbed sweep (min) is the estimate of the cost,
    # and the ratio of back-to-back pairs is the drift-free view of 1M vs 10k.
    best = {level: min(values) for level, values in sweep["times"].items()}
    med = {level: statistics.median(values) for level, values in sweep["times"].items()}
    ratio = best["1M"] / best["10k"]
    paired = statistics.median(sweep["paired"])
    print(f"sweep of {args.experiments} experiments, best of {args.rounds}: 10k units {best['10k']:.2f} s, "
          f"1M units {best['1M']:.2f} s; 1M/10k = {ratio:.3f} (median of back-to-back pairs {paired:.3f}; "
          f"medians {med['10k']:.2f} s / {med['1M']:.2f} s)")
    reads = sweep["reads"]
    print(f"documents read per sweep: 10k units {reads['10k']}, 1M units {reads['1M']} "
          f"(= {args.experiments} x {len(VARIANTS)} variants x {len(METRICS)} metrics x {args.shards} shards "
          f"of aggregates + a fixed number per experiment; the load average peaked at "
          f"{max(sweep['load']):.1f} on {os.cpu_count()} cores)")
    for s, r in ingest.items():
        print(f"KPI ingestion, KPI_SHARDS={s:2d}: {r['events_per_s']:8.1f} events/s ({args.workers} workers, "
              f"{r['seconds']:.1f} s, {r['outcomes']}, errors {r['errors']}, shards used {r['shards_used']}, "
              f"aggregates consistent={r['consistent']})")
        if r["first_error"]:
            print(f"  first error: {r['first_error']}")
    problems = list(sweep["problems"])
    problems += [f"ingestion with {s} shards: stored n {r['units_n_stored']} != {r['units_n_expected']}"
                 for s, r in ingest.items() if not r["consistent"]]
    for p in problems:
        print(f"NOT LIKE-FOR-LIKE: {p}")
    emit("sweep", "s/sweep (1M units, best of rounds)", round(best["1M"], 4),
         {"sweep_10k_units": round(best["10k"], 4)},
         {"experiments": args.experiments, "variants": len(VARIANTS), "metrics": len(METRICS),
          "shards": args.shards, "units": list(LEVELS.values()), "rounds": args.rounds,
          "ingest_seconds": args.ingest_seconds, "ingest_workers": args.workers},
         higher_is_better=False,
         extra={"ratio_1m_over_10k": round(ratio, 4), "paired_ratio_median": round(paired, 4),
                "sweep_seconds": {k: [round(v, 3) for v in vs] for k, vs in sweep["times"].items()},
                "documents_read_per_sweep": reads,
                "reads_equal": reads["10k"] == reads["1M"],
                "sweep_seconds_median": {k: round(v, 3) for k, v in med.items()},
                "ms_per_experiment": {k: round(1000 * v / args.experiments, 2) for k, v in best.items()},
                "load_average_max": round(max(sweep["load"]), 2),
                "ingest_events_per_s": {f"{s}_shards": round(r["events_per_s"], 1) for s, r in ingest.items()},
                "ingest_ratio_10_over_1_shard": round(ingest[10]["events_per_s"] / ingest[1]["events_per_s"], 3)
                if ingest[1]["events_per_s"] else None,
                "ingest_errors": {f"{s}_shards": r["errors"] for s, r in ingest.items()},
                "like_for_like": not problems})
    return 1 if problems else 0
