"""At-least-once delivery: KPI events, spillover links and fraud signals delivered through the real
Pub/Sub entry points of main.py, shuffled across topics and with every message delivered one to
three times, end in the same database as one in-order delivery of each message.

Both runs start from the same emulator export. What is compared is the whole database, with
only what is legitimately order- or clock-dependent abstracted: wall-clock times and the hashes
over them, the random shard a counter increment landed on (shards are summed), the order of
entries in a hash chain (compared as a multiset, and every chain must verify), which node of a
union-find component is its root (components are compared as sets of units), and, per spillover
event, which of two events reaching the same unit got there first (compared as the union).
"""

from __future__ import annotations

import base64
import json
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from functions.adapters.metric_store import reset_store, store
from functions.adapters.metric_store.schema import COLUMNS, deduped
from functions.models.holdouts import CohortCreate, FreezeRequest
from functions.services.holdouts import cohorts
from functions.services.ledger.verification import verify_all
from tests.integration.faults.conftest import merge_shards, scrub
from tests.support.database import dump
from tests.support.factories import PM, expose, kpi, running_experiment
from tests.support.warehouse import sweep_stats


def push(payload: dict[str, Any], message_id: str) -> dict[str, Any]:
    return {"message": {"data": base64.b64encode(json.dumps(payload).encode()).decode(), "messageId": message_id,
                        "publishTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"), "attributes": {}},
            "subscription": "projects/demo/subscriptions/push"}


def _setup() -> tuple[str, str]:
    cohort = cohorts.create(CohortCreate(name="reorder-holdout", percentage=50.0, salt="reorder-salt-1"), PM.to_dict())
    cohorts.freeze(cohort.id, FreezeRequest(reason="test"), PM.to_dict())
    eid = running_experiment(cohort.id, kpis=[
        {"metric": "revenue", "role": "PRIMARY", "type": "MEAN", "direction": "INCREASE"},
        {"metric": "conversion", "role": "SECONDARY", "type": "PROPORTION"},
        {"metric": "revenue-per-session", "role": "SECONDARY", "type": "RATIO", "numerator": "revenue",
         "denominator": "session"}])
    _expose(eid)
    return cohort.id, eid


def _expose(eid: str) -> None:
    expose(eid, {f"k{i}": ("control" if i % 2 else "treatment") for i in range(8)},
           at=datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2))


def _landed() -> dict[str, list[tuple]]:
    """The metric store's facts as reads see them (each event id once), without landing times."""
    out = {}
    for table in ("kpi_events", "fraud_flags", "exposures"):
        columns = [c for c, _ in COLUMNS[table] if c != "received_at"]
        rows = store().query(f"SELECT {', '.join(columns)} FROM {deduped(table)} t ORDER BY event_id")
        out[table] = [tuple(r[c] for c in columns) for r in rows]
    return out


def _messages(eid: str) -> list[tuple[str, dict[str, Any], str]]:
    """(entry point, payload, message id) in their natural order."""
    base = datetime.now(UTC) - timedelta(minutes=90)
    out: list[tuple[str, dict[str, Any], str]] = []
    n = 0
    for i in range(8):  # several events per unit, each unit's at distinct times; exact (integer) values
        for j, (metric, value) in enumerate([("revenue", 3.0 + i), ("session", 1.0), ("revenue", 2.0 * i),
                                             ("conversion", float(i % 3 == 0)), ("session", 2.0)]):
            n += 1
            ts = (base + timedelta(minutes=10 * j + i)).isoformat()
            out.append(("kpi_events", kpi(f"k{i}", metric, value, eventId=f"kpi-{i}-{j}", timestamp=ts,
                                          region="DE" if j < 3 else "FR", preValue=float(i)), f"m{n}"))
    links = [("REFERRAL", "r0", "r1"), ("REFERRAL", "r1", "r2"), ("REFERRAL", "r3", "r4"), ("REFERRAL", "r5", "r0"),
             ("REFERRAL", "r6", "r7"), ("REFERRAL", "r2", "r6"), ("REFERRAL", "r8", "r9"), ("REFERRAL", "r9", "r3")]
    for i, (link_type, source, target) in enumerate(links):
        n += 1
        out.append(("spillover_events", {"eventId": f"link-{i}", "linkType": link_type, "sourceUnitId": source,
                                         "targetUnitId": target}, f"m{n}"))
    for i in range(4):  # gifts of the treatment and of the control offer
        n += 1
        out.append(("spillover_events", {"eventId": f"gift-{i}", "linkType": "GIFT", "sourceUnitId": f"g{2 * i + 1}",
                                         "targetUnitId": f"g{2 * i}",
                                         "offer": {"experimentId": eid,
                                                   "variant": "treatment" if i % 2 == 0 else "control"}}, f"m{n}"))
    for i in range(3):  # shared wallets of two members
        n += 1
        out.append(("spillover_events", {"eventId": f"wallet-{i}", "linkType": "SHARED_WALLET",
                                         "sourceUnitId": f"w{2 * i}", "targetUnitId": f"w{2 * i + 1}",
                                         "clusterId": f"wallet-{i}"}, f"m{n}"))
    flagged = (base + timedelta(minutes=1)).isoformat()
    for i, (unit, reason) in enumerate([("k1", "card testing"), ("k1", "velocity"), ("k4", "emulator"),
                                        ("r2", "velocity")]):
        n += 1
        out.append(("fraud_signals", {"eventId": f"fraud-{i}", "unitId": unit, "reason": reason,
                                      "flaggedAt": flagged}, f"m{n}"))
    return out


def canonical(state: dict[str, dict[str, Any]]) -> dict[str, Any]:
    state = scrub(merge_shards(state))
    out: dict[str, Any] = {}
    chains: dict[str, list[str]] = defaultdict(list)
    contaminated: dict[str, set[str]] = defaultdict(set)
    nodes: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for path, doc in state.items():
        parts = path.split("/")
        if parts[0] == "experimentLedger" and len(parts) == 4 and parts[2] == "entries":
            entry = {k: v for k, v in doc["canonical"].items() if k not in ("seq", "prevHash", "timestamp")}
            keys = entry.get("payload", {}).pop("contaminatedUnitKeys", [])
            contaminated[parts[1]].update(keys)
            chains[parts[1]].append(json.dumps(entry, sort_keys=True))
        elif parts[0] == "holdoutCohorts" and len(parts) == 4 and parts[2] == "units":
            nodes[parts[1]][parts[3]] = doc
        elif parts[0] == "holdoutSpilloverEvents":
            result = doc["result"]
            for verdict in result["verdicts"]:
                verdict.pop("contaminatedUnits"), verdict.pop("componentSpansBoth")
            out[path] = doc
        elif parts[0] == "experimentAnalyses" and parts[-2] == "units":  # fraud flags: sets of reasons
            out[path] = {**doc, "reasons": sorted(doc["reasons"]), "eventIds": sorted(doc["eventIds"])}
        else:
            out[path] = doc
    for chain, entries in chains.items():
        out[f"{chain}#entries"] = sorted(entries)
        out[f"{chain}#contaminated"] = sorted(contaminated[chain])
    for cohort, docs in nodes.items():
        def root(key: str, docs: dict[str, dict[str, Any]] = docs) -> str:
            while docs[key]["parent"] is not None:
                key = docs[key]["parent"]
            return key
        members: dict[str, list[str]] = defaultdict(list)
        for key in docs:
            members[root(key)].append(key)
        for r, keys in members.items():
            stats = {k: docs[r][k] for k in ("size", "holdout", "treated", "spans")}
            out[f"holdoutCohorts/{cohort}#component:{min(keys)}"] = {"members": sorted(keys), **stats}
        for key, doc in docs.items():
            out[f"holdoutCohorts/{cohort}/units/{key}"] = {
                k: v for k, v in doc.items() if k not in ("parent", "size", "holdout", "treated", "spans")}
    return out


def _deliver(function_client, deliveries: list[tuple[str, dict[str, Any], str]]) -> None:
    for target, payload, message_id in deliveries:
        response = function_client(target).post("/", json=push(payload, message_id))
        assert response.status_code == 200, (target, payload, response.data[:300])


def test_shuffled_duplicated_deliveries_end_in_the_same_database_as_in_order_delivery(
        crashable_firestore, function_client):
    fs = crashable_firestore
    cohort_id, eid = _setup()
    messages = _messages(eid)
    start = fs.export()

    _deliver(function_client, messages)
    in_order = canonical(dump())
    landed_in_order, stats_in_order = _landed(), sweep_stats(eid)
    assert verify_all()["ok"]

    rng = random.Random(20240611)
    noisy = [m for m in messages for _ in range(rng.choice((1, 2, 3)))]
    rng.shuffle(noisy)
    assert len(noisy) > len(messages) and [m[2] for m in noisy[:len(messages)]] != [m[2] for m in messages]
    fs.restart(start)
    reset_store()  # the metric store starts over too, with the same exposures
    _expose(eid)
    _deliver(function_client, noisy)
    shuffled = canonical(dump())
    assert verify_all()["ok"]
    assert _landed() == landed_in_order
    assert sweep_stats(eid) == stats_in_order

    diff = sorted(p for p in set(in_order) | set(shuffled) if in_order.get(p) != shuffled.get(p))
    assert not diff, "state differs: " + "; ".join(f"{p}: {in_order.get(p)} != {shuffled.get(p)}" for p in diff[:3])

    # and the state is the intended one, not merely the same twice
    paths = list(in_order)
    assert not any("/processedEvents/" in p or ("/units/" in p and p.startswith("offerExperiments/")) for p in paths)
    assert sum(p.startswith("holdoutSpilloverEvents/") for p in paths) == 15
    events = landed_in_order["kpi_events"]
    assert len(events) == 40 and {u: sum(e[1] == u for e in events) for u in {e[1] for e in events}} == {
        f"k{i}": 5 for i in range(8)}
    assert sum(e[3] for e in events if e[1] == "k3" and e[2] == "revenue") == 3.0 + 3 + 6.0
    revenue = stats_in_order["treatment"]["revenue"]
    totals = [3.0 + 3 * i for i in range(8) if i % 2 == 0]
    assert (revenue.n, revenue.total_x) == (4, sum(totals))
    assert revenue.var == sum((t - sum(totals) / 4) ** 2 for t in totals) / 3
    flags = landed_in_order["fraud_flags"]
    assert sorted({f[1] for f in flags}) == ["k1", "k4", "r2"]
    assert sorted(f[2] for f in flags if f[1] == "k1") == ["card testing", "velocity"]
    nodes = {d["unitId"]: d for p, d in in_order.items() if p.startswith(f"holdoutCohorts/{cohort_id}/units/")}
    assert sorted(u for u, d in nodes.items() if d["contaminated"]) == ["r1", "r3", "r5", "r6", "w0", "w5"]
    counters = in_order[f"holdoutCohorts/{cohort_id}/counters/*"]
    assert counters == {"crossings": 10, "crossings_REFERRAL": 7, "crossings_GIFT": 1, "crossings_SHARED_WALLET": 2,
                        "blocked": 1, "contaminated": 6, "contaminated_REFERRAL": 4, "contaminated_SHARED_WALLET": 2,
                        "spanning": 4}
