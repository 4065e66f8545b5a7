"""Metrics at warehouse scale, on the embedded engine (DuckDB), side by side with the in-memory path.

    python -m bench warehouse [--units-per-arm 1000000] [--experiments 500] [--events 300000]
                              [--threads 1] [--memory-limit 450MB] [--only analysis]

1. KPI ingestion end to end, exactly once: JSON batches of 1,000 events (the API's maximum)
   validated by the API's model and landed by the service, 10% of batches delivered twice; the
   landed table then counts each event once (checked).
2. One analysis of `--units-per-arm` units per arm from raw event rows (exposures, KPI events
   with pre-period values, fraud flags): the SQL path (exposure join, attribution, exclusions,
   exact cap, sufficient statistics) in a fresh process that opens the store's file, so its peak
   RSS is the function's; beside it, the in-memory pipeline on the same units (unit arrays read
   into Python, then `analyse_units`), and both results compared.
3. The sweep's statistics for `--experiments` running experiments in one query, plus the guardrail
   evaluation (the Firestore snapshot writes are `bench sweep`'s subject).

A cost model follows each: bytes a BigQuery on-demand query would scan (the columns it reads, over
the rows it reads) and dollars at $6.25/TiB, beside the Firestore reads and writes the per-unit path
needed for the same work at $0.06 per 100k reads and $0.18 per 100k writes. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

BQ_DOLLARS_PER_TIB = 6.25
FS_READ, FS_WRITE = 0.06 / 100_000, 0.18 / 100_000
T0 = np.datetime64("2026-11-01T00:00:00", "us")  # naive datetime64 values are UTC
ROOT = Path(__file__).resolve().parent.parent
TODAY = {"ingest_events_per_s": 342.0, "analysis_seconds_300k_units": 137.0, "sweep_seconds_500_p50": 43.0}


def _env(path: str) -> None:
    os.environ["METRIC_STORE"] = "embedded"
    os.environ["METRIC_STORE_PATH"] = path
    from functions.adapters.metric_store import reset_store
    from functions.config import reset_settings

    reset_settings()
    reset_store()


# -- 1. ingestion -------------------------------------------------------------------------------


def ingest(events: int, seed: int = 1) -> dict[str, Any]:
    from functions.adapters.metric_store import store
    from functions.models.experiments import KpiBatch
    from functions.services.experiments.kpi import ingest as ingest_batch

    rng = np.random.default_rng(seed)
    now = datetime.now(UTC) - timedelta(minutes=5)
    bodies = []
    for b in range(0, events, 1000):
        batch = [{"eventId": f"ev-{b + i}", "unitId": f"u{rng.integers(0, events // 3)}", "metric": "revenue",
                  "value": float(round(rng.lognormal(2, 1), 2)), "currency": "EUR", "region": "DE",
                  "timestamp": (now + timedelta(microseconds=b + i)).isoformat()} for i in range(min(1000, events - b))]
        bodies.append(json.dumps({"events": batch}))
    redelivered = [bodies[i] for i in range(0, len(bodies), 10)]
    started = time.perf_counter()
    accepted = 0
    for body in bodies + redelivered:
        accepted += ingest_batch(KpiBatch.model_validate_json(body).events).accepted
    seconds = time.perf_counter() - started
    counted = store().query("SELECT COUNT(DISTINCT event_id) AS n FROM kpi_events")[0]["n"]
    assert counted == events, (counted, events)  # exactly once at read
    sent = events + sum(len(json.loads(b)["events"]) for b in redelivered)
    row_bytes = 8 * 4 + 12 + 8 + 4 + 2 * 20  # ids, metric, value, pre, region, times
    return {"events": events, "deliveries": sent, "seconds": seconds, "events_per_s": sent / seconds,
            "landed_bytes": sent * row_bytes,
            "bigquery_streaming_dollars_per_million": 1e6 * row_bytes / 2**30 * 0.05,  # $0.05/GiB streamed
            # today: exposure and unit reads; unit, shard and idempotency-key writes
            "firestore_dollars_per_million": 1e6 * (3 * FS_READ + 3 * FS_WRITE)}


# -- 2. one analysis at 1M units per arm --------------------------------------------------------


def generate(path: str, units_per_arm: int, seed: int = 2) -> dict[str, int]:
    """Exposures for two arms and a 10% holdout, KPI events (about 1.3 per unit: 30% payers, some
    with several purchases, pre-period values on first events), late and duplicated rows, bots and
    fraud flags, written straight into the store's tables through Arrow."""
    from functions.adapters.metric_store.duckdb_store import DuckDBStore

    rng = np.random.default_rng(seed)
    n = 2 * units_per_arm + units_per_arm // 5
    ids = np.char.add("u", np.arange(n).astype(str))
    status = np.where(np.arange(n) >= 2 * units_per_arm, "HOLDOUT", "ASSIGNED")
    variant = np.where(status == "HOLDOUT", None, np.where(np.arange(n) % 2 == 0, "control", "plus10"))
    exposed = T0 + np.array(rng.integers(0, 10 * 86400, n), dtype="timedelta64[s]")
    exposures = pa.table({
        "event_id": pa.array(np.char.add(ids, "|x")), "experiment_id": pa.array(np.full(n, "exp-wh")),
        "unit_id": pa.array(ids), "status": pa.array(status), "variant": pa.array(variant.tolist(), pa.string()),
        "analytics_consent": pa.array(rng.random(n) > 0.03), "exposed_at": pa.array(exposed, pa.timestamp("us", "UTC")),
        "received_at": pa.array(exposed, pa.timestamp("us", "UTC"))})
    per_unit = rng.choice([0, 1, 1, 1, 2, 3], size=n)
    owner = np.repeat(np.arange(n), per_unit)
    m = owner.size
    payer = rng.random(m) < 0.3
    lift = np.where(variant[owner] == "plus10", 1.05, 1.0)
    value = np.where(payer, np.round(rng.lognormal(2.5, 1.3, m) * lift, 2), 0.0)
    first = np.r_[True, owner[1:] != owner[:-1]]
    pre = np.where(first, np.round(rng.lognormal(2.0, 1.0, m), 2), np.nan)
    at = exposed[owner] + np.array(rng.integers(-3600, 5 * 86400, m), dtype="timedelta64[s]")
    late = rng.random(m) < 0.02
    received = at + np.where(late, np.timedelta64(8, "h"), np.timedelta64(5, "s"))
    regions = np.array(["DE", "US", "FR", "GB"])[rng.integers(0, 4, m)]
    events = pa.table({
        "event_id": pa.array(np.char.add("e", np.arange(m).astype(str))), "unit_id": pa.array(ids[owner]),
        "metric": pa.array(np.full(m, "revenue")), "value": pa.array(value),
        "pre_value": pa.array(pre, pa.float64(), from_pandas=True), "region": pa.array(regions),
        "event_time": pa.array(at, pa.timestamp("us", "UTC")),
        "received_at": pa.array(received, pa.timestamp("us", "UTC"))})
    dup = rng.random(m) < 0.01  # redelivered rows
    flagged = ids[rng.random(n) < 0.005]
    fraud = pa.table({"event_id": pa.array(np.char.add("f-", flagged)), "unit_id": pa.array(flagged),
                      "reason": pa.array(np.full(flagged.size, "chargeback")),
                      "source": pa.array(np.full(flagged.size, "risk")),
                      "flagged_at": pa.array(np.full(flagged.size, T0), pa.timestamp("us", "UTC")),
                      "received_at": pa.array(np.full(flagged.size, T0), pa.timestamp("us", "UTC"))})
    store = DuckDBStore(path)
    store.ensure_schema()
    for table, rows in (("exposures", exposures), ("kpi_events", events), ("kpi_events", events.filter(dup)),
                        ("fraud_flags", fraud)):
        _bulk(store, table, rows)
    store._con.execute("CHECKPOINT")
    store.close()
    return {"exposures": n, "kpi_events": m + int(dup.sum()), "fraud_flags": int(flagged.size)}


ANALYSIS_CHILD = """
import json, resource, sys, time
from functions.core.stats.corrections import ExclusionConfig
from functions.core.stats.pipeline import AnalysisConfig, analyse_aggregated
from functions.services.metrics import analysis_inputs
kpi = {"metric": "revenue", "type": "MEAN", "role": "PRIMARY"}
doc = {"kpis": [kpi], "guardrails": []}
ex = ExclusionConfig(restricted_regions=("GB",))
cfg = AnalysisConfig(control="control", exclusions=ex, expected_split={"control": 0.5, "plus10": 0.5})
# the function before its query: interpreter, numpy/scipy, the engine's library and its open store
from functions.adapters.metric_store import store
store()
before = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS:"))
cpu_before = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
started = time.perf_counter()
scope = analysis_inputs.Scope("exp-wh", ("control", "plus10"), ("revenue",))
everyone = analysis_inputs.Scope("exp-wh", ("control", "plus10", "holdout"), ("revenue",))
agg, facts = analysis_inputs.aggregated_with_population(doc, kpi, scope, ex, everyone)
result = analyse_aggregated(agg, cfg)
seconds = time.perf_counter() - started
primary = result["arms"]["plus10"]["primary"]
# VmHWM: this process's own peak (ru_maxrss survives exec, so it would include the parent's)
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": seconds, "peak_rss_mb": hwm / 1024, "rss_before_query_mb": before / 1024,
                  "cpu_seconds": usage.ru_utime + usage.ru_stime - cpu_before,
                  "lift": primary["lift"], "p": primary["pValue"], "cap": result["exclusions"]["winsorCap"],
                  "units": {a: facts[a].units for a in facts}, "result": result}))
"""


def analysis(path: str, units_per_arm: int, in_memory: bool, threads: int = 1,
             memory_limit: str = "") -> dict[str, Any]:
    env = {**os.environ, "METRIC_STORE": "embedded", "METRIC_STORE_PATH": path, "PYTHONPATH": str(ROOT),
           "METRIC_STORE_THREADS": str(threads), "METRIC_STORE_MEMORY": memory_limit}
    done = subprocess.run([sys.executable, "-c", ANALYSIS_CHILD], env=env, capture_output=True, text=True,
                          check=True, cwd=ROOT)
    sql = json.loads(done.stdout.strip().splitlines()[-1])
    out = {"sql_seconds": sql["seconds"], "sql_peak_rss_mb": sql["peak_rss_mb"], "sql_cpu_seconds": sql["cpu_seconds"],
           "rss_before_query_mb": sql["rss_before_query_mb"],
           "lift": sql["lift"],
           "p": sql["p"], "cap": sql["cap"], "units": sql["units"]}
    if in_memory:
        started = time.perf_counter()
        memory = _in_memory(path)
        out["in_memory_seconds"] = time.perf_counter() - started
        from tests.support.warehouse import close

        strip = {"fingerprint", "inputs"}
        out["equal_to_1e-9"] = close({k: v for k, v in sql["result"].items() if k not in strip},
                                     {k: v for k, v in memory.items() if k not in strip}) == []
    return out


def _in_memory(path: str) -> dict[str, Any]:
    """Today's shape: every unit's totals brought into the process, then the numpy pipeline (the
    SQL for the per-unit rows is the same attribution; only the aggregation moves)."""
    from functions.adapters.metric_store import reset_store, store
    from functions.core.stats.corrections import ExclusionConfig, UnitData
    from functions.core.stats.pipeline import AnalysisConfig, analyse_units

    # the peer holds every unit's row by design; its ordered ARRAY_AGGs do not spill, so it runs
    # without the store's default bound
    bound = os.environ.get("METRIC_STORE_MEMORY")
    os.environ["METRIC_STORE_MEMORY"] = "80%"
    _env(path)
    engine = store()  # settings are read here, before the bound comes back for the parts after this one
    if bound is None:
        os.environ.pop("METRIC_STORE_MEMORY")
    else:
        os.environ["METRIC_STORE_MEMORY"] = bound
    rows = engine.query("""
WITH exposed AS (
  SELECT unit_id, MIN(exposed_at) AS exposed_at, LOGICAL_AND(analytics_consent) AS consent,
         MAX(IF(status = 'HOLDOUT', 'holdout', variant)) AS arm,
         COUNT(DISTINCT CONCAT(status, IFNULL(variant, ''))) AS k
  FROM (SELECT * FROM exposures QUALIFY ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY received_at) = 1)
  GROUP BY unit_id),
ev AS (SELECT * FROM kpi_events QUALIFY ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY received_at) = 1)
SELECT u.unit_id, u.arm, u.consent, COUNT(e.event_id) AS events, SUM(IFNULL(e.value, 0)) AS x,
       ARRAY_AGG(e.pre_value IGNORE NULLS ORDER BY e.event_time, e.event_id)[SAFE_OFFSET(0)] AS pre,
       ARRAY_AGG(e.region IGNORE NULLS ORDER BY e.event_time DESC, e.event_id DESC)[SAFE_OFFSET(0)] AS region,
       MIN(e.event_time) AS t0, MAX(e.event_time) AS t1, COUNT(e.event_id) - COUNT(DISTINCT e.event_time) AS same,
       LOGICAL_OR(f.unit_id IS NOT NULL) AS fraud
FROM exposed u LEFT JOIN ev e ON e.unit_id = u.unit_id AND e.event_time >= u.exposed_at
LEFT JOIN (SELECT DISTINCT unit_id FROM fraud_flags) f ON f.unit_id = u.unit_id
WHERE u.k = 1 AND u.arm IN ('control', 'plus10')
GROUP BY u.unit_id, u.arm, u.consent ORDER BY u.unit_id""")
    reset_store()  # one process may hold the store's file: let the next analysis process open it
    arms = {}
    for arm in ("control", "plus10"):
        mine = [r for r in rows if r["arm"] == arm]
        events = np.array([float(r["events"]) for r in mine])
        spans = np.array([(r["t1"] - r["t0"]).total_seconds() / 86400 if r["t0"] else 0.0 for r in mine])
        same = np.array([float(r["same"]) for r in mine])
        arms[arm] = UnitData(value=np.array([r["x"] for r in mine]), pre=np.array([r["pre"] or 0.0 for r in mine]),
                             fraud=np.array([r["fraud"] for r in mine]), consent=np.array([r["consent"] for r in mine]),
                             region=np.array([r["region"] or "unknown" for r in mine], dtype=object), events=events,
                             active_days=np.maximum(np.ceil(spans), 1.0),
                             identical_timestamp_share=np.where(events >= 10, same / np.maximum(events - 1, 1), 0.0))
    ex = ExclusionConfig(restricted_regions=("GB",))
    cfg = AnalysisConfig(control="control", exclusions=ex, expected_split={"control": 0.5, "plus10": 0.5})
    return analyse_units(arms, cfg)


def _bytes(rows: int, columns: dict[str, int]) -> int:
    return rows * sum(columns.values())


# -- 3. the sweep of N running experiments ------------------------------------------------------


def sweep(path: str, experiments: int, units: int, seed: int = 3) -> dict[str, Any]:
    from functions.adapters.metric_store import store
    from functions.services.experiments import guardrails
    from functions.services.metrics import snapshot_stats

    _env(path)
    rng = np.random.default_rng(seed)
    n = experiments * units
    exp = np.repeat(np.arange(experiments), units)
    serial = np.tile(np.arange(units), experiments).astype(str)
    ids = np.char.add(np.char.add("s", exp.astype(str)), np.char.add("-", serial))
    at = T0 + np.array(rng.integers(0, 86400, n), dtype="timedelta64[s]")
    ts = pa.timestamp("us", "UTC")
    exposures = pa.table({"event_id": pa.array(np.char.add(ids, "|x")),
                          "experiment_id": pa.array(np.char.add("exp-", exp.astype(str))), "unit_id": pa.array(ids),
                          "status": pa.array(np.full(n, "ASSIGNED")),
                          "variant": pa.array(np.where(rng.random(n) < 0.5, "control", "treatment")),
                          "analytics_consent": pa.array(np.ones(n, bool)), "exposed_at": pa.array(at, ts),
                          "received_at": pa.array(at, ts)})
    owner = np.repeat(np.arange(n), rng.choice([0, 1, 2], size=n))
    m = owner.size
    metric = np.where(rng.random(m) < 0.7, "revenue", "refund")
    events = pa.table({"event_id": pa.array(np.char.add("k", np.arange(m).astype(str))),
                       "unit_id": pa.array(ids[owner]),
                       "metric": pa.array(metric), "value": pa.array(np.where(metric == "refund", 1.0,
                                                                              rng.lognormal(2, 1, m))),
                       "pre_value": pa.array(np.full(m, np.nan), from_pandas=True),
                       "region": pa.array(np.full(m, "DE")),
                       "event_time": pa.array(at[owner] + np.timedelta64(60, "s"), ts),
                       "received_at": pa.array(at[owner] + np.timedelta64(65, "s"), ts)})
    engine = store()
    for table, rows in (("exposures", exposures), ("kpi_events", events)):
        _bulk(engine, table, rows)
    docs = [{"id": f"exp-{i}", "startedAt": datetime(2026, 11, 1, tzinfo=UTC),
             "variants": [{"key": "control"}, {"key": "treatment"}],
             "kpis": [{"metric": "revenue", "role": "PRIMARY", "type": "MEAN"}],
             "guardrails": [{"metric": "refund", "harmfulDirection": "INCREASE", "absoluteMax": 0.5,
                             "action": "KILL"}]} for i in range(experiments)]
    started = time.perf_counter()
    stats = snapshot_stats.read(docs)
    verdicts = sum(len(guardrails.evaluate(d, stats[d["id"]].stats)) for d in docs)
    seconds = time.perf_counter() - started
    scanned = _bytes(n, {"event_id": 16, "experiment_id": 8, "unit_id": 12, "status": 10, "variant": 11,
                         "exposed_at": 8, "received_at": 8}) + _bytes(m, {"event_id": 12, "unit_id": 12, "metric": 9,
                                                                         "value": 8, "pre_value": 8, "event_time": 8,
                                                                         "received_at": 8})
    return {"experiments": experiments, "exposures": n, "kpi_events": m, "seconds": seconds, "verdicts": verdicts,
            "bytes_scanned": scanned, "bigquery_dollars": scanned / 2**40 * BQ_DOLLARS_PER_TIB,
            "firestore_reads_today": experiments * 2 * 2 * 10, "firestore_dollars_today":
                experiments * 2 * 2 * 10 * FS_READ}


def _bulk(engine: Any, table: str, rows: pa.Table) -> None:
    """Millions of generated rows straight through Arrow (the store's row check is per value)."""
    cur = engine._con.cursor()
    cur.register("_bench", rows)
    cur.execute(f"INSERT INTO {table} SELECT * FROM _bench")
    cur.unregister("_bench")


PARTS = ("ingest", "analysis", "sweep")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench warehouse", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units-per-arm", type=int, default=1_000_000)
    parser.add_argument("--experiments", type=int, default=500)
    parser.add_argument("--units-per-experiment", type=int, default=2_000)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--no-in-memory", action="store_true", help="skip the in-memory comparison")
    parser.add_argument("--threads", type=int, default=1, help="the analysis's METRIC_STORE_THREADS")
    parser.add_argument("--memory-limit", default="",
                        help='the analysis\'s METRIC_STORE_MEMORY, e.g. "450MB"; "80%%" is DuckDB\'s own default '
                             '(unbounded in practice); unset: the store\'s default')
    parser.add_argument("--only", choices=PARTS, action="append",
                        help="run only this part (repeatable); the JSON line has null for the others")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the analysis this many times on the same data, each in a fresh process, and "
                             "report the fastest (all runs are listed): on a shared machine the fastest run is "
                             "the least disturbed one")
    args = parser.parse_args(argv)
    parts = set(args.only or PARTS)
    tmp = Path(tempfile.mkdtemp(prefix="bench-warehouse-"))
    wall = time.perf_counter()
    ing: dict[str, Any] = {"events_per_s": None}
    an: dict[str, Any] = {"sql_seconds": None, "sql_peak_rss_mb": None, "sql_cpu_seconds": None}
    sw: dict[str, Any] = {"seconds": None}
    try:  # each part's store file (the analysis's is 118 MB at 1M units per arm) goes with the run
        if "ingest" in parts:
            ing = _ingest_part(tmp, args)
        if "analysis" in parts:
            an = _analysis_part(tmp, args)
        if "sweep" in parts:
            sw = _sweep_part(tmp, args)
    finally:
        from functions.adapters.metric_store import reset_store

        reset_store()
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps({
        "ingest_events_per_s": _round(ing["events_per_s"], 1),
        "analysis_seconds_1m_per_arm": _round(an["sql_seconds"], 3),
        "analysis_peak_rss_mb": _round(an["sql_peak_rss_mb"], 1),
        "analysis_cpu_seconds": _round(an["sql_cpu_seconds"], 2),
        "analysis_rss_before_query_mb": _round(an.get("rss_before_query_mb"), 1),
        "analysis_threads": args.threads, "analysis_memory_limit": _limit(args),
        "analysis_runs": an.get("runs"),
        "sweep_seconds_500": _round(sw["seconds"], 3),
        "units_per_arm": args.units_per_arm, "experiments": args.experiments,
        "analysis_in_memory_seconds": _round(an.get("in_memory_seconds"), 3),
        "analysis_equal_to_in_memory": an.get("equal_to_1e-9"),
        "engine": "duckdb-embedded", "today": TODAY, "wall_seconds": round(time.perf_counter() - wall, 1),
        "peak_rss_mb_bench_process": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
    return 0


def _limit(args: argparse.Namespace) -> str:
    from functions.config import EMBEDDED_MEMORY_LIMIT

    return str(args.memory_limit or EMBEDDED_MEMORY_LIMIT)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _ingest_part(tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    _env(str(tmp / "ingest.duckdb"))
    ing = ingest(args.events)
    print(f"ingestion: {ing['deliveries']:,} deliveries of {ing['events']:,} events in {ing['seconds']:.1f} s = "
          f"{ing['events_per_s']:,.0f} events/s, each counted once (today's Firestore path: "
          f"{TODAY['ingest_events_per_s']:.0f} events/s)", flush=True)
    print(f"  cost per million events: BigQuery streaming ${ing['bigquery_streaming_dollars_per_million']:.3f}, "
          f"today's Firestore ${ing['firestore_dollars_per_million']:.2f}", flush=True)
    return ing


def _analysis_part(tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    path = str(tmp / "analysis.duckdb")
    sizes = generate(path, args.units_per_arm)
    print(f"analysis data: {sizes['exposures']:,} exposures, {sizes['kpi_events']:,} KPI event rows, "
          f"{sizes['fraud_flags']:,} fraud flags", flush=True)
    runs = [analysis(path, args.units_per_arm, not args.no_in_memory and i == 0, args.threads, args.memory_limit)
            for i in range(max(1, args.repeat))]
    an = {**runs[0], **min(runs, key=lambda r: r["sql_seconds"]),
          "runs": [{"seconds": round(r["sql_seconds"], 2), "cpu_seconds": round(r["sql_cpu_seconds"], 2),
                    "peak_rss_mb": round(r["sql_peak_rss_mb"], 1)} for r in runs]}
    scanned = _bytes(sizes["exposures"], {"event_id": 10, "experiment_id": 8, "unit_id": 10, "status": 10,
                                          "variant": 9, "analytics_consent": 1, "exposed_at": 8, "received_at": 8}) \
        + 2 * _bytes(sizes["kpi_events"], {"event_id": 10, "unit_id": 10, "metric": 9, "value": 8, "pre_value": 8,
                                           "region": 4, "event_time": 8, "received_at": 8})
    reads_today = 3 * sizes["exposures"]
    print(f"analysis of {args.units_per_arm:,} units per arm in SQL: {an['sql_seconds']:.2f} s "
          f"({an['sql_cpu_seconds']:.1f} CPU s, {args.threads} thread(s), memory limit {_limit(args)}), "
          f"function peak RSS {an['sql_peak_rss_mb']:.0f} MB, {an['rss_before_query_mb']:.0f} MB of it before the "
          f"query (lift {an['lift']:+.4f}, p {an['p']:.2g}, cap {an['cap']:.2f})", flush=True)
    if len(runs) > 1:
        print(f"  runs (fastest reported): {an['runs']}", flush=True)
    if "in_memory_seconds" in an:
        print(f"  in-memory pipeline on the same units: {an['in_memory_seconds']:.2f} s; results equal to 1e-9: "
              f"{an['equal_to_1e-9']}", flush=True)
    print(f"  cost: ~{scanned / 1e9:.2f} GB scanned = ${scanned / 2**40 * BQ_DOLLARS_PER_TIB:.4f} on BigQuery; "
          f"today {reads_today:,} Firestore reads = ${reads_today * FS_READ:.2f}", flush=True)
    return an


def _sweep_part(tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    sw = sweep(str(tmp / "sweep.duckdb"), args.experiments, args.units_per_experiment)
    print(f"sweep statistics for {sw['experiments']} running experiments ({sw['exposures']:,} exposures, "
          f"{sw['kpi_events']:,} events) in one query + guardrails: {sw['seconds']:.2f} s "
          f"(today {TODAY['sweep_seconds_500_p50']:.0f} s p50 under load)", flush=True)
    print(f"  cost: ~{sw['bytes_scanned'] / 1e9:.2f} GB scanned = ${sw['bigquery_dollars']:.4f} per sweep; today "
          f"{sw['firestore_reads_today']:,} shard reads = ${sw['firestore_dollars_today']:.3f}", flush=True)
    return sw
