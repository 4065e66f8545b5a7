"""Sustained load on the whole served system, then a check that nothing was lost.

    python -m bench load [--experiments 100,500] [--seconds 60] [--rate 30] [--sweep-every 15]
                         [--assign-clients 3] [--assign-rate 10] [--units 1000] [--quick]
                         [--events-per-message 1] [--landing direct|pubsub]

Per phase (100, then 500 concurrently RUNNING experiments) on loopback only:

- Google's Firestore and Pub/Sub emulators; every function of main.py served the way
  `python -m localdev.run` serves them (localdev.router, the push subscriptions of
  localdev.pubsub_setup, the Firestore trigger bridge), in a separate process
  (bench/load_server.py) that meters every request;
- N experiments created and started through the real lifecycle helper (create, submit,
  four-eyes approval with the approver's own token, start) in mutual-exclusion layers; one
  small layer holds the guardrail experiments, whose simulated refunds breach a KILL guardrail;
- a pool of units assigned through the `assign` HTTP function (first exposures then travel
  exposures topic -> push -> exposures function), and the bench waits until every exposure
  document exists;
- for `--seconds`: KPI events published to the kpi-events topic at `--rate` per second (push ->
  the real kpi_events function), one event per message or `--events-per-message` in a batch
  message (`{"events": [...]}`, as a producer with many events sends them), a sweep tick
  published every `--sweep-every` seconds (push -> the sweep function), and `--assign-clients`
  processes calling `POST /assign/` at `--assign-rate` each;
- drain: wait until the server acknowledged every published KPI message (with `--landing pubsub`:
  and its local consumer landed every row; see localdev.landing_consumer), run one last sweep,
  wait until every kill-switch outbox message is sent.

Checks (counted, never asserted; a benchmark reports): every published KPI event landed in the
metric store and is read once (the server's embedded store is a file, read after it stops); the
sweep's statistics (n, sum x, centred sum of squares per experiment x arm x metric, every exposed
unit counted) equal what the events and the assign responses imply, whether or not the experiment
was killed meanwhile;
every experiment's ledger chain and every checkpoint verify; every kill-switch decision in an
outbox arrives on a kill-switch subscription (distinct messageKeys vs deliveries).

Events are designed so the expectation is computable: each event names one layer's metric, a
unit is exposed to exactly one experiment of a layer (or, in the global holdout, to all of them
as `holdout`), values are small integers (float sums are exact).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

from bench.harness import ROOT
from bench.report import emit

GUARD_LAYER = "guard"
GUARD_METRIC = "refund-guard"
APPROVER = "load-approver"
HOLDOUT_PERCENT = 5.0
EXACTLY_ONCE_ONLY = ("killSwitchDuplicateDeliveries",)  # not a loss: subscribers de-duplicate by messageKey
REFUND_SHARE_OF_GUARD_EVENTS = 0.8
REFUND_P = {"treatment": 0.9, "control": 0.02, "holdout": 0.02}


# ---------------------------------------------------------------------------------------------
# layout


@dataclass
class Layout:
    tag: str
    experiments: dict[str, dict[str, Any]]  # id -> {layer, share, metrics, guard}
    layers: dict[str, list[str]]  # layer -> experiment ids
    layer_metric: dict[str, str]  # layer -> its primary metric

    @property
    def guard_ids(self) -> list[str]:
        return self.layers.get(GUARD_LAYER, [])


def plan_layout(n: int, tag: str) -> Layout:
    """A small guardrail layer (2 or 3 experiments) plus up to 9 layers sharing the rest."""
    guards = (2 if n < 50 else 3) if n >= 4 else 1
    regular = n - guards
    n_layers = max(1, min(9, regular))
    layers: dict[str, list[str]] = defaultdict(list)
    for i in range(guards):
        layers[GUARD_LAYER].append(f"{tag}-g{i:03d}")
    for i in range(regular):
        layers[f"l{i % n_layers}"].append(f"{tag}-x{i:04d}")
    experiments: dict[str, dict[str, Any]] = {}
    layer_metric = {}
    for layer, ids in layers.items():
        metric = "conv-guard" if layer == GUARD_LAYER else f"conv-{layer}"
        layer_metric[layer] = metric
        for eid in ids:
            metrics = {metric} | ({GUARD_METRIC} if layer == GUARD_LAYER else set())
            experiments[eid] = {"layer": layer, "share": 1.0 / len(ids), "metrics": metrics,
                                "guard": layer == GUARD_LAYER}
    return Layout(tag, experiments, dict(layers), layer_metric)


def definition(eid: str, spec: dict[str, Any], cohort_id: str, metric: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": eid, "name": f"load {eid}", "offerType": "PAYWALL",
        "hypothesis": {"statement": f"paywall variant {eid} lifts conversion"},
        "variants": [{"key": "control", "weight": 50}, {"key": "treatment", "weight": 50}],
        "holdoutCohortId": cohort_id,
        "kpis": [{"metric": metric, "role": "PRIMARY", "type": "MEAN", "direction": "INCREASE"}],
        "layer": spec["layer"], "layerShare": spec["share"], "requiredApprovers": [APPROVER],
    }
    if spec["guard"]:
        body["guardrails"] = [{"metric": GUARD_METRIC, "harmfulDirection": "INCREASE", "absoluteMax": 0.08,
                               "action": "KILL", "minUnitsPerArm": 8}]
    return body


# ---------------------------------------------------------------------------------------------
# setup


def seed_experiments(layout: Layout, workers: int = 6) -> tuple[str, float]:
    """Frozen global holdout + every experiment through the lifecycle's service calls (the
    same ones runFullExperimentLifecycle makes: create, submit, four-eyes approval with the
    approver's own token, start). Create/submit/approve run in parallel; the starts run one
    at a time, because a start reads its layer in its transaction and the emulator's
    transaction locks make concurrent starts (and creates) abort each other."""
    from functions.adapters.auth import Principal, authenticate
    from functions.models.experiments import CreateExperiment
    from functions.models.holdouts import CohortCreate, FreezeRequest
    from functions.services.experiments import approvals, definitions, start
    from functions.services.holdouts import cohorts
    from localdev.tokens import mint

    began = time.monotonic()
    pm = Principal(uid="load-pm", roles=frozenset({"pm"}))
    cohort = cohorts.create(CohortCreate(name=f"load holdout {layout.tag}", percentage=HOLDOUT_PERCENT), pm.to_dict())
    cohorts.freeze(cohort.id, FreezeRequest(), pm.to_dict())
    approver = authenticate(f"Bearer {mint(APPROVER, ['approver'])}")

    def prepare(eid: str) -> str:
        spec = layout.experiments[eid]
        body = definition(eid, spec, cohort.id, layout.layer_metric[spec["layer"]])
        definitions.create(CreateExperiment.model_validate(body), pm.to_dict())
        approvals.submit(eid, pm.to_dict())
        return approvals.approve(eid, approver, "approved by the load bench")["state"]

    with ThreadPoolExecutor(max_workers=workers) as pool:
        states = dict(zip(layout.experiments, pool.map(prepare, list(layout.experiments)), strict=True))
    problems = [f"{eid}: {state}" for eid, state in states.items() if state != "APPROVED"]
    for eid in layout.experiments:
        if not problems:
            state = start.start(eid, pm.to_dict())["state"]
            if state != "RUNNING":
                problems.append(f"{eid}: {state}")
    if problems:
        raise RuntimeError(f"experiments not RUNNING after the lifecycle: {problems[:5]}")
    return cohort.id, time.monotonic() - began


def assign_pool(base: str, token: str, layout: Layout, units: list[str],
                timeout: float = 60.0) -> dict[str, dict[str, str]]:
    """unit -> {experiment: arm} for every exposure the assign function reports (arm
    'holdout' for HOLDOUT). Waits until the served config knows every experiment."""
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + timeout
    while True:
        probe = requests.post(f"{base}/assign/batch", json={"units": [{"unitId": "load-probe"}]},
                              headers=headers, timeout=60).json()
        known = set(probe["results"][0]["experiments"])
        if set(layout.experiments) <= known:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"assign sees {len(known & set(layout.experiments))}/{len(layout.experiments)} "
                               "experiments")
        time.sleep(1.0)
    exposures: dict[str, dict[str, str]] = {}
    for start in range(0, len(units), 200):
        chunk = units[start:start + 200]
        body = {"units": [{"unitId": u, "attributes": {"region": "DE"}} for u in chunk]}
        resp = requests.post(f"{base}/assign/batch", json=body, headers=headers, timeout=120)
        resp.raise_for_status()
        for result in resp.json()["results"]:
            arms = {}
            for eid, d in result["experiments"].items():
                if eid not in layout.experiments:
                    continue
                if d["status"] == "HOLDOUT":
                    arms[eid] = "holdout"
                elif d.get("exposed") and d.get("variant"):
                    arms[eid] = d["variant"]
            exposures[result["unitId"]] = arms
    return exposures


def wait_for_exposures(expected: int, timeout: float) -> tuple[int, float]:
    from functions.adapters.firestore import HOLDOUT_ASSIGNMENTS, db

    began = time.monotonic()
    count = 0
    while time.monotonic() - began < timeout:
        count = int(db().collection(HOLDOUT_ASSIGNMENTS).count().get()[0][0].value)
        if count >= expected:
            break
        time.sleep(1.0)
    return count, time.monotonic() - began


# ---------------------------------------------------------------------------------------------
# the server process


class Server:
    def __init__(self, env: dict[str, str], tag: str) -> None:
        from localdev.emulators import free_port

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        (ROOT / ".run").mkdir(exist_ok=True)
        self.log_path = ROOT / ".run" / f"bench-load-server-{tag}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.load_server", "--port", str(self.port), "--max-seconds", "5400"],
            cwd=ROOT, env={**os.environ, **env}, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"load server exited early; see {self.log_path}")
            try:
                if self.stats().get("ready"):
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"load server not ready within {timeout:.0f}s; see {self.log_path}")

    def stats(self) -> dict[str, Any]:
        return requests.get(f"{self.base}/_load/stats", timeout=30).json()

    def function(self, name: str) -> dict[str, Any]:
        return self.stats()["functions"].get(name, {})

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()


# ---------------------------------------------------------------------------------------------
# load generators


@dataclass
class Stream:
    events: dict[str, dict[str, Any]] = field(default_factory=dict)  # eventId -> event (published OK)
    message_ids: set[str] = field(default_factory=set)
    failed: int = 0  # events whose message failed to publish
    started: float = 0.0
    ended: float = 0.0


def kpi_stream(layout: Layout, exposures: dict[str, dict[str, str]], rate: float, seconds: float,
               stop: threading.Event, seed: int, guard_share: float, per_message: int = 1) -> Stream:
    """Publish KPI events at `rate`/s for `seconds` (paced on a schedule, not in bursts), one per
    message or `per_message` to a batch message."""
    from google.cloud import pubsub_v1

    from functions.config import settings

    rng = random.Random(seed)
    client = pubsub_v1.PublisherClient()
    topic = settings().topic_path("kpi_events")
    units = sorted(exposures)
    layers = list(layout.layers)
    regular = [la for la in layers if la != GUARD_LAYER]
    out = Stream(started=time.monotonic())
    pending: list[tuple[list[dict[str, Any]], Any]] = []
    batch: list[dict[str, Any]] = []

    def send() -> None:
        body = batch[0] if per_message == 1 else {"events": list(batch)}
        pending.append((list(batch), client.publish(topic, json.dumps(body, separators=(",", ":")).encode())))
        batch.clear()

    # Refunds walk through the units without replacement (each unit reports its refund status
    # once per pass), so the guardrail sees many distinct treated units quickly.
    refund_units = list(units)
    rng.shuffle(refund_units)
    refunds = 0
    deadline = out.started + seconds
    k = 0
    while not stop.is_set():
        now = time.monotonic()
        if now >= deadline:
            break
        due = out.started + k / rate
        if due > now:
            time.sleep(min(due - now, deadline - now))
            continue
        unit = rng.choice(units)
        if GUARD_LAYER in layout.layers and (not regular or rng.random() < guard_share):
            layer = GUARD_LAYER
        else:
            layer = rng.choice(regular)
        if layer == GUARD_LAYER and rng.random() < REFUND_SHARE_OF_GUARD_EVENTS:
            unit = refund_units[refunds % len(refund_units)]
            refunds += 1
            arms = {exposures[unit].get(eid) for eid in layout.layers[GUARD_LAYER]}
            arm = "treatment" if "treatment" in arms else "control" if "control" in arms else "holdout"
            metric, value = GUARD_METRIC, 1.0 if rng.random() < REFUND_P[arm] else 0.0
        else:
            metric, value = layout.layer_metric[layer], float(rng.randint(1, 5))
        batch.append({"eventId": f"{layout.tag}-ev{k:07d}", "unitId": unit, "metric": metric, "value": value,
                      "timestamp": datetime.now(UTC).isoformat(), "region": "DE"})
        if len(batch) >= per_message:
            send()
        k += 1
    if batch:
        send()
    out.ended = time.monotonic()
    for events, future in pending:
        try:
            out.message_ids.add(str(future.result(timeout=60)))
            out.events.update((event["eventId"], event) for event in events)
        except Exception:  # a failed publish is simply not part of the expectation
            out.failed += len(events)
    client.stop()
    return out


def ticker(every: float, stop: threading.Event, sent: list[str]) -> None:
    from functions.adapters.pubsub import publish

    while not stop.wait(every):
        now = datetime.now(UTC)
        with contextlib.suppress(Exception):  # a lost tick only means one sweep fewer
            sent.append(publish("sweep_ticks", {"eventId": f"load-tick-{uuid.uuid4().hex[:12]}",
                                                "tick": now.isoformat()}))


def sampler(server: Server, stop: threading.Event, samples: list[tuple[float, int]]) -> None:
    while not stop.wait(2.0):
        with contextlib.suppress(requests.RequestException):
            samples.append((time.monotonic(), int(server.function("kpi_events").get("distinctAcked", 0))))


# ---------------------------------------------------------------------------------------------
# verification


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def expected_attributions(layout: Layout, exposures: dict[str, dict[str, str]],
                          event: dict[str, Any]) -> dict[str, str]:
    """experiment -> arm the event must be counted in (the experiments declaring its metric to
    which its unit is exposed)."""
    arms = exposures.get(event["unitId"], {})
    return {eid: arm for eid, arm in arms.items() if event["metric"] in layout.experiments[eid]["metrics"]}


def read_experiment(eid: str) -> dict[str, Any]:
    from functions.adapters.firestore import OUTBOX
    from functions.adapters.repositories.experiments import document as experiment_document
    from functions.services.ledger import verification

    ref = experiment_document(eid)
    doc = ref.get().to_dict() or {}
    kills = [s.to_dict() or {} for s in ref.collection(OUTBOX).stream()]
    kills = [k for k in kills if k.get("topic") == "kill_switch"]
    ledger = verification.verify_experiment(eid)
    verdicts = []
    if doc.get("guardrails"):
        from functions.services.experiments.health import latest_snapshot

        snapshot = latest_snapshot(eid) or {}
        verdicts = [{k: v.get(k) for k in ("arm", "status", "observed", "bound", "detail")}
                    for v in snapshot.get("guardrails", [])]
    return {"doc": doc, "state": doc.get("state"), "kills": kills, "ledger": ledger, "guardVerdicts": verdicts}


def pull_all(subscription: str, quiet_seconds: float = 4.0, limit_seconds: float = 90.0) -> list[str]:
    """messageKey of every message delivered on `subscription` until it stays quiet."""
    from google.cloud import pubsub_v1

    keys: list[str] = []
    subscriber = pubsub_v1.SubscriberClient()
    began, last = time.monotonic(), time.monotonic()
    with subscriber:
        while time.monotonic() - last < quiet_seconds and time.monotonic() - began < limit_seconds:
            try:
                resp = subscriber.pull(request={"subscription": subscription, "max_messages": 100}, timeout=5)
            except Exception:  # DeadlineExceeded on an empty subscription
                continue
            if resp.received_messages:
                last = time.monotonic()
                keys += [m.message.attributes.get("messageKey", f"no-key:{m.message.message_id}")
                         for m in resp.received_messages]
                subscriber.acknowledge(request={"subscription": subscription,
                                                "ack_ids": [m.ack_id for m in resp.received_messages]})
    return keys


def verify(layout: Layout, exposures: dict[str, dict[str, str]], stream: Stream,
           kill_keys: list[str]) -> dict[str, Any]:
    from functions.services.ledger import verification

    with ThreadPoolExecutor(max_workers=8) as pool:
        read = dict(zip(layout.experiments, pool.map(read_experiment, list(layout.experiments)), strict=True))

    # KPI events: each published event landed and read once; the sweep's statistics equal what the
    # events and the exposures imply (every exposed unit counts, with 0 when it sent nothing)
    from functions.adapters.metric_store import store
    from functions.adapters.metric_store.schema import KPI_EVENTS, deduped
    from functions.services.metrics import snapshot_stats

    landed = {r["event_id"] for r in store().query(f"SELECT event_id FROM {deduped(KPI_EVENTS)} t")}
    lost = sorted(e for e in stream.events if e not in landed)
    unknown = sorted(e for e in landed if e not in stream.events)
    expected_pairs = {event_id: expected_attributions(layout, exposures, event)
                      for event_id, event in stream.events.items()}
    totals: dict[tuple[str, str, str], dict[str, float]] = defaultdict(dict)  # (eid, arm, metric) -> unit -> x
    for unit, arms in exposures.items():
        for eid, arm in arms.items():
            for metric in layout.experiments[eid]["metrics"]:
                totals[(eid, arm, metric)].setdefault(unit, 0.0)
    for event_id, event in stream.events.items():
        for eid, arm in expected_pairs[event_id].items():
            totals[(eid, arm, event["metric"])][event["unitId"]] += event["value"]
    swept = snapshot_stats.read([r["doc"] for r in read.values() if r["doc"]])
    mismatches = []
    for (eid, arm, metric), units in sorted(totals.items()):
        got = swept.get(eid, snapshot_stats.ExperimentStats()).stats.get(arm, {}).get(metric)
        # Σx and Σx² do not depend on units without events: assign clients running during the
        # stream expose a few more units than the bench's own assign responses show
        values = list(units.values())
        expect = {"total": sum(values), "sum_sq": sum(x * x for x in values)}
        have = ({"total": got.total_x, "sum_sq": got.centred()[3] + got.n * got.mean ** 2} if got is not None
                else {"total": 0.0, "sum_sq": 0.0})
        if got is None or got.n < len(values) or any(
                abs(have[k] - expect[k]) > 1e-6 * max(1.0, abs(expect[k])) for k in expect):
            mismatches.append({"experiment": eid, "arm": arm, "metric": metric, "stats": have, "expected": expect,
                               "units": got.n if got is not None else 0, "unitsAtLeast": len(values)})
    counted_events = len(landed & set(stream.events))
    cells = totals

    # ledger
    bad_chains = [{"experiment": eid, **r["ledger"]} for eid, r in read.items() if not r["ledger"].get("ok")]
    whole = verification.verify_all()

    # kill switch
    outbox_kills = {k["messageKey"]: (eid, k) for eid, r in read.items() for k in r["kills"]}
    delivered = Counter(kill_keys)
    missing = sorted(key for key in outbox_kills if key not in delivered)
    unsent = sorted(key for key, (_e, k) in outbox_kills.items() if not k.get("sent"))
    unexpected = sorted(key for key in delivered if key not in outbox_kills)
    duplicated = {key: n for key, n in delivered.items() if n > 1}
    states = Counter(r["state"] for r in read.values())
    killed = sorted(eid for eid, r in read.items() if r["state"] in ("KILLED", "PAUSED"))
    return {
        "states": dict(states),
        "killed": killed,
        "guardExperimentsKilled": f"{sum(e in killed for e in layout.guard_ids)}/{len(layout.guard_ids)}",
        "guardVerdicts": {eid: read[eid]["guardVerdicts"] for eid in layout.guard_ids},
        "kpi": {"published": len(stream.events), "expectedAttributions": sum(map(len, expected_pairs.values())),
                "landedOnce": counted_events, "lost": len(lost), "lostSample": lost[:5],
                "unknownEventIds": len(unknown), "statCells": len(cells),
                "statMismatches": len(mismatches), "mismatchSample": mismatches[:3]},
        "ledger": {"experimentsVerified": len(read) - len(bad_chains), "experiments": len(read),
                   "badChains": bad_chains[:5], "verifyAllOk": whole.get("ok"), "chains": whole.get("chains"),
                   "entries": whole.get("entries"), "checkpointProblems": whole.get("checkpointProblems")},
        "killSwitch": {"decisions": len(outbox_kills), "distinctDelivered": len(delivered),
                       "deliveries": sum(delivered.values()), "missing": missing, "unsent": unsent,
                       "unexpected": unexpected, "duplicated": duplicated},
    }


# ---------------------------------------------------------------------------------------------
# one phase


@dataclass
class Options:
    seconds: float
    rate: float
    sweep_every: float
    assign_clients: int
    assign_rate: float
    units: int
    drain_seconds: float
    seed: int
    guard_share: float = 0.3  # share of KPI events for the guardrail layer (80% of them refunds)
    events_per_message: int = 1
    landing: str = "direct"  # METRIC_LANDING of the served system


def _wait(predicate, timeout: float, step: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def run_phase(n: int, opts: Options, emulator_env: dict[str, str]) -> dict[str, Any]:
    from google.cloud import pubsub_v1

    from bench.load_clients import assign_client
    from functions.adapters.firestore import reset_client
    from functions.adapters.pubsub import ensure_topics, publish
    from functions.config import reset_settings, settings
    from localdev.tokens import mint

    tag = f"p{n}-{uuid.uuid4().hex[:4]}"
    window = max(1, int(opts.sweep_every // 2))
    env = {**emulator_env, "TOPIC_PREFIX": f"load-{tag}-", "LOG_LEVEL": "WARNING",
           "SWEEP_WINDOW_SECONDS": str(window), "METRIC_LANDING": opts.landing}
    os.environ.update(env)
    reset_settings()
    reset_client()
    layout = plan_layout(n, tag)
    print(f"\n== phase: {n} RUNNING experiments ({len(layout.layers)} layers, "
          f"{len(layout.guard_ids)} with a KILL guardrail), topics prefixed {settings().topic_prefix}", flush=True)
    ensure_topics()
    subscriber = pubsub_v1.SubscriberClient()
    kill_sub = f"projects/{settings().project_id}/subscriptions/{settings().topic_prefix}load-kill-switch"
    subscriber.create_subscription(request={"name": kill_sub, "topic": settings().topic_path("kill_switch"),
                                            "ack_deadline_seconds": 60})
    metrics_file = ROOT / ".run" / f"bench-load-metrics-{tag}.duckdb"
    server = Server({**env, "METRIC_STORE_PATH": str(metrics_file)}, tag)
    result: dict[str, Any] = {"experiments": n, "layers": len(layout.layers), "guardExperiments": len(layout.guard_ids)}
    try:
        server.wait_ready()
        cohort_id, seed_seconds = seed_experiments(layout)
        result["setupSeconds"] = round(seed_seconds, 1)
        print(f"  {n} experiments RUNNING after {seed_seconds:.1f}s (holdout cohort {cohort_id})", flush=True)
        token = mint("load-backend", ["service"])
        units = [f"{tag}-u{i:05d}" for i in range(opts.units)]
        began = time.monotonic()
        exposures = assign_pool(server.base, token, layout, units)
        rows = sum(map(len, exposures.values()))
        count, _waited = wait_for_exposures(rows, timeout=max(120.0, rows / 50))
        result["exposureRows"] = rows
        result["exposureSeconds"] = round(time.monotonic() - began, 1)
        print(f"  {len(units)} units assigned, {count}/{rows} exposure documents after "
              f"{time.monotonic() - began:.1f}s", flush=True)

        stop = threading.Event()
        ticks: list[str] = []
        samples: list[tuple[float, int]] = []
        threads = [threading.Thread(target=ticker, args=(opts.sweep_every, stop, ticks), daemon=True),
                   threading.Thread(target=sampler, args=(server, stop, samples), daemon=True)]
        ctx = multiprocessing.get_context("spawn")
        known = units[: min(len(units), 300)]
        with ctx.Pool(max(1, opts.assign_clients)) as pool:
            clients = pool.starmap_async(assign_client, [
                (server.base, token, known, opts.seconds, opts.assign_rate, c, opts.seed + c)
                for c in range(opts.assign_clients)]) if opts.assign_clients else None
            for t in threads:
                t.start()
            acked_before = int(server.function("kpi_events").get("distinctAcked", 0))
            t_start = time.monotonic()
            print(f"  streaming {opts.rate:g} KPI events/s ({opts.events_per_message} per message, landing "
                  f"{opts.landing}) for {opts.seconds:g}s, sweep tick every {opts.sweep_every:g}s, "
                  f"{opts.assign_clients} assign clients x {opts.assign_rate:g}/s", flush=True)
            stream = kpi_stream(layout, exposures, opts.rate, opts.seconds, threading.Event(), opts.seed,
                                opts.guard_share, opts.events_per_message)
            t_end = time.monotonic()
            acked_at_end = int(server.function("kpi_events").get("distinctAcked", 0))
            client_results = clients.get(timeout=opts.seconds + 120) if clients else []
        stop.set()
        for t in threads:
            t.join(timeout=30)

        # drain
        published = len(stream.message_ids)

        def drained() -> bool:
            stats = server.stats()
            kpi = stats["functions"].get("kpi_events", {})
            return (int(kpi.get("distinctAcked", 0)) - acked_before >= published and not kpi.get("inFlight")
                    and not stats.get("landingPending"))

        is_drained = _wait(drained, opts.drain_seconds, step=0.5)
        t_drained = time.monotonic()
        kpi = server.function("kpi_events")
        acked = int(kpi.get("distinctAcked", 0)) - acked_before
        print(f"  published {published} messages, {len(stream.events)} events ({stream.failed} failed); "
              f"acknowledged {acked} messages "
              f"{'after' if is_drained else 'NOT DRAINED after'} {t_drained - t_end:.1f}s of draining", flush=True)
        sweeps_before = len(server.stats()["sweeps"])
        publish("sweep_ticks", {"eventId": f"load-final-{uuid.uuid4().hex[:8]}", "tick": datetime.now(UTC).isoformat()})
        _wait(lambda: len(server.stats()["sweeps"]) > sweeps_before and not server.function("sweep").get("inFlight"),
              timeout=600.0, step=1.0)
        _wait(lambda: not _unsent_kills(layout), timeout=60.0, step=1.0)
        stats = server.stats()
        kill_keys = pull_all(kill_sub)
    finally:
        server.stop()
        with subscriber:
            _delete_subscriptions(subscriber, kill_sub)
    # the server's embedded metric store is a file only one process may open: read it once it stopped
    from functions.adapters.metric_store import reset_store

    os.environ["METRIC_STORE_PATH"] = str(metrics_file)
    reset_settings()
    reset_store()
    print("  verifying landed events, the sweep's statistics, ledger chains and kill-switch messages ...", flush=True)
    try:
        checks = verify(layout, exposures, stream, kill_keys)
    finally:
        reset_store()
        os.environ.pop("METRIC_STORE_PATH", None)
        reset_settings()
        metrics_file.unlink(missing_ok=True)

    latencies = [x for r in client_results for x in r["latencies_ms"]]
    statuses: Counter = Counter()
    for r in client_results:
        statuses.update(r["statuses"])
    assign_seconds = max((r["seconds"] for r in client_results), default=0.0)
    sweeps = [s for s in stats["sweeps"] if s["status"] < 300]
    stream_seconds = stream.ended - stream.started
    per_message = opts.events_per_message  # messages are full but for the last one
    events_acked = len(stream.events) if is_drained else min(acked * per_message, len(stream.events))
    window_rate = None
    steady = [(t, c) for t, c in samples if t_start + 0.2 * opts.seconds <= t <= t_end]
    if len(steady) >= 2 and steady[-1][0] > steady[0][0]:
        window_rate = per_message * (steady[-1][1] - steady[0][1]) / (steady[-1][0] - steady[0][0])
    fn = stats["functions"]
    result.update({
        "eventsPerMessage": per_message,
        "landing": opts.landing,
        "messagesPublished": published,
        "eventsPublished": len(stream.events),
        "publishFailures": stream.failed,
        "publishRate": round(len(stream.events) / stream_seconds, 2) if stream_seconds else None,
        "sustainedEventsPerSecond": round(events_acked / (t_drained - t_start), 2),
        "ingestRateDuringStream": round(window_rate, 2) if window_rate is not None else None,
        "ackedDuringStream": (acked_at_end - acked_before) * per_message,
        "drainSeconds": round(t_drained - t_end, 1),
        "drained": is_drained,
        "kpiDeliveries": kpi.get("deliveries"),
        "kpiDistinctAcked": acked,
        "kpiStatuses": kpi.get("statuses"),
        "kpiServerP50ms": _ms(kpi.get("p50Seconds")),
        "kpiServerP99ms": _ms(kpi.get("p99Seconds")),
        "assign": {"requests": len(latencies), "rate": round(len(latencies) / assign_seconds, 1) if assign_seconds
                   else None, "p50ms": _round(_percentile(latencies, 0.5)),
                   "p99ms": _round(_percentile(latencies, 0.99)), "errors": sum(r["errors"] for r in client_results),
                   "statuses": dict(statuses)},
        "sweep": {"ticks": len(ticks) + 1, "runs": len(sweeps),
                  "p50Seconds": _round(_percentile([s["seconds"] for s in sweeps], 0.5)),
                  "maxSeconds": _round(max((s["seconds"] for s in sweeps), default=None)),
                  "seconds": [s["seconds"] for s in sweeps],
                  "statuses": fn.get("sweep", {}).get("statuses")},
        "exposuresFunction": {"deliveries": fn.get("exposures", {}).get("deliveries"),
                              "statuses": fn.get("exposures", {}).get("statuses")},
        "checks": checks,
    })
    return result


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 2)


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def _unsent_kills(layout: Layout) -> list[str]:
    from google.cloud.firestore_v1.base_query import FieldFilter

    from functions.adapters.firestore import OUTBOX
    from functions.adapters.repositories.experiments import document as experiment_document

    unsent = []
    for eid in layout.guard_ids:
        query = experiment_document(eid).collection(OUTBOX).where(filter=FieldFilter("sent", "==", False))
        unsent += [s.id for s in query.stream()]
    return unsent


def _delete_subscriptions(subscriber: Any, *extra: str) -> None:
    from functions.triggers import PUBSUB_FUNCTIONS
    from localdev.pubsub_setup import subscription_path

    for path in [*extra, *(subscription_path(f) for f in PUBSUB_FUNCTIONS)]:
        with contextlib.suppress(Exception):  # already gone
            subscriber.delete_subscription(request={"subscription": path})


# ---------------------------------------------------------------------------------------------
# report


def _losses(checks: dict[str, Any]) -> dict[str, int]:
    k, ks, lg = checks["kpi"], checks["killSwitch"], checks["ledger"]
    return {"lostEvents": k["lost"], "unknownEvents": k["unknownEventIds"], "statMismatches": k["statMismatches"],
            "badLedgerChains": lg["experiments"] - lg["experimentsVerified"] + (0 if lg["verifyAllOk"] else 1),
            "killSwitchMissing": len(ks["missing"]) + len(ks["unsent"]),
            "killSwitchDuplicateDeliveries": ks["deliveries"] - ks["distinctDelivered"],
            "killSwitchUnexpected": len(ks["unexpected"])}


def print_table(results: list[dict[str, Any]]) -> None:
    rows = [
        ("experiments RUNNING", lambda r: r["experiments"]),
        ("KPI events published", lambda r: r["eventsPublished"]),
        ("publish rate /s", lambda r: r["publishRate"]),
        ("sustained events/s (to drained)", lambda r: r["sustainedEventsPerSecond"]),
        ("ingest /s during stream", lambda r: r["ingestRateDuringStream"]),
        ("drain s", lambda r: r["drainSeconds"]),
        ("kpi deliveries / distinct", lambda r: f"{r['kpiDeliveries']} / {r['kpiDistinctAcked']}"),
        ("kpi handler p50/p99 ms", lambda r: f"{r['kpiServerP50ms']} / {r['kpiServerP99ms']}"),
        ("assign req (rate/s)", lambda r: f"{r['assign']['requests']} ({r['assign']['rate']})"),
        ("assign p50/p99 ms", lambda r: f"{r['assign']['p50ms']} / {r['assign']['p99ms']}"),
        ("assign errors", lambda r: r["assign"]["errors"]),
        ("sweeps run", lambda r: r["sweep"]["runs"]),
        ("sweep p50/max s", lambda r: f"{r['sweep']['p50Seconds']} / {r['sweep']['maxSeconds']}"),
        ("guard experiments killed", lambda r: r["checks"]["guardExperimentsKilled"]),
        ("events published/landed once", lambda r: f"{r['checks']['kpi']['published']} / "
                                                   f"{r['checks']['kpi']['landedOnce']}"),
        ("lost KPI events", lambda r: r["checks"]["kpi"]["lost"]),
        ("stat cells / mismatches", lambda r: f"{r['checks']['kpi']['statCells']} / "
                                              f"{r['checks']['kpi']['statMismatches']}"),
        ("ledger chains ok", lambda r: f"{r['checks']['ledger']['experimentsVerified']}/"
                                       f"{r['checks']['ledger']['experiments']} "
                                       f"(verify all: {r['checks']['ledger']['verifyAllOk']})"),
        ("kill-switch decisions", lambda r: r["checks"]["killSwitch"]["decisions"]),
        ("kill-switch delivered/distinct", lambda r: f"{r['checks']['killSwitch']['deliveries']} / "
                                                     f"{r['checks']['killSwitch']['distinctDelivered']}"),
        ("kill-switch missing", lambda r: len(r["checks"]["killSwitch"]["missing"])),
    ]
    width = max(len(name) for name, _ in rows)
    print("\n" + " " * (width + 2) + "".join(f"{str(r['experiments']) + ' exp':>22}" for r in results))
    for name, get in rows:
        cells = []
        for r in results:
            try:
                cells.append(f"{get(r)!s:>22}")
            except (KeyError, TypeError):
                cells.append(f"{'-':>22}")
        print(f"{name:<{width}}  " + "".join(cells))
    for r in results:
        losses = _losses(r["checks"])
        bad = {k: v for k, v in losses.items() if v}
        print(f"{r['experiments']} experiments: " + (f"PROBLEMS {bad}" if bad else "nothing lost, nothing doubled")
              + ("" if r["drained"] else " (KPI backlog NOT drained in time: 'lost' may be still queued)"))
        for key in ("lostSample", "mismatchSample"):
            if r["checks"]["kpi"].get(key):
                print(f"  {key}: {r['checks']['kpi'][key]}")
        if r["checks"]["ledger"]["badChains"]:
            print(f"  bad chains: {r['checks']['ledger']['badChains']}")
        ks = r["checks"]["killSwitch"]
        if ks["missing"] or ks["unsent"] or ks["duplicated"] or ks["unexpected"]:
            print(f"  kill switch: missing {ks['missing']} unsent {ks['unsent']} duplicated {ks['duplicated']} "
                  f"unexpected {ks['unexpected']}")


# ---------------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiments", default="100,500", help="comma-separated phases (RUNNING experiments)")
    parser.add_argument("--seconds", type=float, default=60.0, help="streaming time per phase")
    parser.add_argument("--rate", type=float, default=30.0, help="KPI events published per second")
    parser.add_argument("--sweep-every", type=float, default=15.0, help="seconds between sweep ticks")
    parser.add_argument("--assign-clients", type=int, default=3)
    parser.add_argument("--assign-rate", type=float, default=10.0, help="requests/s per assign client")
    parser.add_argument("--units", type=int, default=1000, help="units receiving KPI events")
    parser.add_argument("--drain-seconds", type=float, default=600.0, help="longest wait for the backlog")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--quick", action="store_true", help="smoke run: 10 experiments, 15 s, 400 units")
    parser.add_argument("--json-out", help="also write the full results to this file")
    parser.add_argument("--events-per-message", type=int, default=1,
                        help="KPI events per Pub/Sub message (1: one event per message; more: a batch message)")
    parser.add_argument("--landing", choices=("direct", "pubsub"), default="direct",
                        help="METRIC_LANDING of the served system (pubsub: landing topics and a local consumer)")
    args = parser.parse_args(argv)
    if args.quick:
        phases = [10]
        opts = Options(seconds=15.0, rate=20.0, sweep_every=5.0, assign_clients=2, assign_rate=5.0, units=400,
                       drain_seconds=120.0, seed=args.seed, guard_share=0.6,
                       events_per_message=args.events_per_message, landing=args.landing)
    else:
        phases = [int(x) for x in args.experiments.split(",") if x.strip()]
        opts = Options(seconds=args.seconds, rate=args.rate, sweep_every=args.sweep_every,
                       assign_clients=args.assign_clients, assign_rate=args.assign_rate, units=args.units,
                       drain_seconds=args.drain_seconds, seed=args.seed,
                       events_per_message=args.events_per_message, landing=args.landing)
    os.environ.setdefault("GOOGLE_CLOUD_PROJECT", "demo-offers-load")
    from localdev.emulators import Emulators, EmulatorUnavailable

    results = []
    try:
        emulators = Emulators(project_id=os.environ["GOOGLE_CLOUD_PROJECT"]).start()
    except EmulatorUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        for i, n in enumerate(phases):
            if i and not emulators.external:
                emulators.clear_firestore()
            results.append(run_phase(n, opts, emulators.env()))
    finally:
        emulators.stop()
    print_table(results)
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump(results, fh, indent=2, default=str)
    per_phase = {str(r["experiments"]): {
        "sustained_events_per_s": r["sustainedEventsPerSecond"], "publish_rate": r["publishRate"],
        "ingest_rate_during_stream": r["ingestRateDuringStream"], "drain_s": r["drainSeconds"],
        "assign_p50_ms": r["assign"]["p50ms"], "assign_p99_ms": r["assign"]["p99ms"],
        "assign_requests": r["assign"]["requests"], "assign_errors": r["assign"]["errors"],
        "sweep_p50_s": r["sweep"]["p50Seconds"], "sweep_max_s": r["sweep"]["maxSeconds"],
        "sweeps": r["sweep"]["runs"], "kpi_deliveries": r["kpiDeliveries"], "kpi_distinct": r["kpiDistinctAcked"],
        "kill_switch": {"decisions": r["checks"]["killSwitch"]["decisions"],
                        "delivered": r["checks"]["killSwitch"]["deliveries"],
                        "distinct": r["checks"]["killSwitch"]["distinctDelivered"]},
        "losses": _losses(r["checks"]),
    } for r in results}
    last = results[-1]
    emit("load", "events/s", last["sustainedEventsPerSecond"], {},
         {"experiments": phases, "seconds": opts.seconds, "rate": opts.rate, "sweep_every": opts.sweep_every,
          "assign_clients": opts.assign_clients, "assign_rate": opts.assign_rate, "units": opts.units,
          "quick": args.quick, "events_per_message": opts.events_per_message, "landing": opts.landing},
         extra={"phases": per_phase,
                "losses_zero": all(not any(v for k, v in _losses(r["checks"]).items() if k not in EXACTLY_ONCE_ONLY)
                                   for r in results),
                "kill_switch_exactly_once": all(not any(_losses(r["checks"])[k] for k in EXACTLY_ONCE_ONLY)
                                                for r in results)})
    return 0
