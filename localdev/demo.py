"""The demo the run command plays: a full experiment lifecycle over HTTP and Pub/Sub against
the served functions, ending in an automatic guardrail kill and its kill-switch message."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import requests
from google.cloud import pubsub_v1

from functions.adapters.pubsub import publish_many
from functions.config import settings
from functions.core.clock import utc_now
from functions.core.ids import new_id, random_hex
from localdev.tokens import bearer, mint

PM = bearer("demo-pm", ["pm"])
OPERATOR = bearer("demo-operator", ["operator"])
SERVICE = bearer("demo-backend", ["service"])
VIEWER = bearer("demo-viewer", ["viewer"])


_CLOCK = {"start": time.monotonic()}  # reset when the demo starts


def _for_people(message: str | None) -> str | None:
    """A JSON message with its numbers rounded for the terminal (the message itself is exact)."""
    try:
        body = json.loads(message or "")
    except ValueError:
        return message
    if not isinstance(body, dict):
        return message
    return json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in body.items()},
                      separators=(",", ":"))


def _say(text: str) -> None:
    print(f"  - [{time.monotonic() - _CLOCK['start']:5.1f}s] {text}", flush=True)


def _call(method: str, url: str, headers: dict[str, str], body: Any = None) -> dict[str, Any]:
    resp = requests.request(method, url, json=body, headers=headers, timeout=60)
    if resp.status_code >= 400:
        raise RuntimeError(f"{method} {url} -> {resp.status_code}: {resp.text[:500]}")
    return resp.json()


def _wait(predicate, timeout: float, what: str, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise RuntimeError(f"demo timed out waiting for {what}")


DEMO_TEAM = "demo-team"


def _lifecycle(base: str, definition: dict[str, Any]) -> dict[str, Any]:
    """Create, submit, approve and start in one call. The approver reviews the content hash and
    signs in with a token bound to it (four eyes on what runs)."""
    definition = {**definition, "id": new_id("exp-demo", 8), "teamId": DEMO_TEAM}
    bound = _call("POST", f"{base}/experiments/lifecycle/content-hash", PM, definition)["contentHash"]
    approver = mint("demo-approver", ["approver"], approvesContentHash=bound)
    return _call("POST", f"{base}/experiments/lifecycle", PM, {"definition": definition, "approverTokens": [approver]})


def run_demo(base: str, units: int = 400, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    _CLOCK["start"] = time.monotonic()
    print("demo: an annual-plan price test with a frozen 10% team holdout", flush=True)
    subscriber = pubsub_v1.SubscriberClient()
    kill_sub = f"projects/{settings().project_id}/subscriptions/demo-kill-switch-{random_hex(6)}"
    subscriber.create_subscription(request={"name": kill_sub, "topic": settings().topic_path("kill_switch")})

    # The demo's holdout and experiments live in their own team, so a quick start run on the same
    # system is held out by its own cohort only and its numbers come out as the README shows.
    cohort = _call("POST", f"{base}/holdouts/cohorts", PM,
                   {"name": "demo team holdout", "percentage": 10, "scope": "TEAM", "teamId": DEMO_TEAM})
    _call("POST", f"{base}/holdouts/cohorts/{cohort['id']}/freeze", PM, {"reason": "demo"})
    _say(f"holdout cohort {cohort['id']} created and frozen (10%, salt {cohort['salt']})")

    definition = {
        "name": "Annual plan +10%", "offerType": "PRICE_CHANGE",
        "hypothesis": {"statement": "A 10% higher annual price lifts revenue per user without more refunds",
                       "expectedImpact": "+5% revenue per user", "risks": "refund spike",
                       "successCriteria": "revenue up, refunds under 8%"},
        "offerConfig": {"oldPrice": 49.99, "newPrice": 54.99, "currency": "EUR"},
        "variants": [{"key": "control", "weight": 50}, {"key": "treatment", "weight": 50}],
        "holdoutCohortId": cohort["id"],
        "kpis": [{"metric": "revenue", "role": "PRIMARY", "type": "MEAN", "direction": "INCREASE"}],
        "guardrails": [{"metric": "refund", "harmfulDirection": "INCREASE", "absoluteMax": 0.08,
                        "action": "KILL", "minUnitsPerArm": 30}],
        "requiredApprovers": ["demo-approver"],
    }
    run = _lifecycle(base, definition)
    eid = run["experimentId"]
    _say(f"experiment {eid}: " + " -> ".join(s["step"] for s in run["steps"]) + f" (state {run['state']})")

    ids = [f"demo-user-{i:05d}" for i in range(units)]
    decided = _call("POST", f"{base}/assign/batch", SERVICE,
                    {"units": [{"unitId": u, "attributes": {"region": "DE"}} for u in ids]})
    arms: dict[str, str] = {}
    statuses: Counter = Counter()
    for result in decided["results"]:
        decision = result["experiments"].get(eid, {})
        statuses[decision.get("status", "NONE")] += 1
        if decision.get("status") == "ASSIGNED":
            arms[result["unitId"]] = decision["variant"]
    _say(f"assigned {units} users: {dict(statuses)}; exposures go to the exposures topic")
    _wait(lambda: sum(_call("GET", f"{base}/experiments/{eid}/health", VIEWER)["exposures"].values())
          >= len(arms), 60, "exposure log")

    events = []
    for unit, arm in arms.items():
        events.append({"eventId": f"rev-{unit}", "unitId": unit, "metric": "revenue",
                       "value": 54.99 if arm == "treatment" else 49.99, "currency": "EUR",
                       "timestamp": utc_now().isoformat(), "region": "DE"})
        refunded = rng.random() < (0.35 if arm == "treatment" else 0.03)
        events.append({"eventId": f"ref-{unit}", "unitId": unit, "metric": "refund", "region": "DE",
                       "value": 1.0 if refunded else 0.0, "timestamp": utc_now().isoformat()})
    sent = len(publish_many("kpi_events", events))
    _say(f"published {sent} KPI events to Pub/Sub (treatment refunds ~35%, control ~3%)")
    stopped = ("KILLED", "PAUSED")

    def ingested_or_stopped() -> str | None:
        health = _call("GET", f"{base}/experiments/{eid}/health", VIEWER)
        if health["state"] in stopped:  # the scheduled sweep saw the breach while KPIs streamed in
            return health["state"]
        counts = [health["unitsWithKpis"].get(arm, 0) for arm in set(arms.values())]
        return "INGESTED" if min(counts) >= 0.9 * min(Counter(arms.values()).values()) else None

    # An operator's "sweep now" (its own snapshot each time) until the sweep has read the KPIs or
    # acted on them; the local ticker's scheduled sweep may get there first.
    _sweep_until(base, ingested_or_stopped, 120, "KPI ingestion")
    _say("sweep run by an operator (Cloud Scheduler also ticks every 5 minutes)")
    state = _wait(lambda: (lambda s: s if s in stopped else None)(
        _call("GET", f"{base}/experiments/{eid}", VIEWER)["state"]), 90, "guardrail action")
    health = _call("GET", f"{base}/experiments/{eid}/health", VIEWER)
    breach = next((g for g in health["guardrails"] if g["status"] == "BREACHED"), {})
    _say(f"guardrail refund breached on {breach.get('arm')}: observed {breach.get('observed', 0):.3f}, "
         f"always-valid lower bound {breach.get('bound', 0):.3f} > limit 0.08 -> experiment {state}")
    message = None
    deadline = time.monotonic() + 30
    while message is None and time.monotonic() < deadline:
        resp = subscriber.pull(request={"subscription": kill_sub, "max_messages": 10}, timeout=10)
        for m in resp.received_messages:
            message = m.message.data.decode()
        if resp.received_messages:
            subscriber.acknowledge(request={"subscription": kill_sub,
                                            "ack_ids": [m.ack_id for m in resp.received_messages]})
    _say(f"kill-switch message received by a subscriber: {_for_people(message)}")
    verify = requests.get(f"{base}/ledger/verify/{eid}", headers=VIEWER, timeout=60)
    if verify.status_code == 200:
        _say(f"ledger chain verifies: {verify.json().get('ok')}")
    subscriber.delete_subscription(request={"subscription": kill_sub})
    subscriber.close()
    running = _running_experiment(base, cohort["id"], rng)
    print(f"demo done: experiment {eid} is {state}; experiment {running} is RUNNING with an analysis", flush=True)
    return {"experimentId": eid, "state": state, "killSwitch": message, "runningExperimentId": running}


def _sweep_until(base: str, done: Any, timeout: float, what: str) -> Any:
    """An operator's "sweep now" until `done()` holds: KPI events land in the metric store as they
    arrive, and the sweep is what reads them (Cloud Scheduler also ticks every 5 minutes)."""
    def swept() -> Any:
        _call("POST", f"{base}/experiments/sweep", OPERATOR, {})
        return done()

    return _wait(swept, timeout, what, every=2.0)


def _ga4_export(arms: dict[str, str] | None = None, rng: random.Random | None = None) -> int:
    """The app's Firebase / GA4 export in the embedded metric store: two weeks of history, and
    (with `arms`) today's sessions and purchases of the experiment's users. In the cloud the
    export is already in BigQuery; nothing is loaded there."""
    from functions.adapters.metric_store import store
    from functions.adapters.metric_store.duckdb_store import DuckDBStore
    from localdev import ga4_sample

    engine = store()
    if not isinstance(engine, DuckDBStore):
        return 0
    now = utc_now()
    rows = ga4_sample.generate(users=200, days=14, start=now - timedelta(days=15))
    if arms:
        rows += ga4_sample.purchases(arms, now, rng or random.Random(3), {"value_first": 1.06})
    ga4_sample.load_duckdb(engine, rows, settings().ga4_dataset)
    return len(rows)


def _running_experiment(base: str, cohort_id: str, rng: random.Random, units: int = 300) -> str:
    """A second experiment that stays RUNNING with data and a published analysis, so the console
    has a healthy experiment to show beside the killed one. Its second KPI reads purchases from the
    app's GA4 export (a catalog metric over the user's own table, not the project's KPI events)."""
    _ga4_export()
    definition = {
        "name": "Paywall copy: value first", "offerType": "PAYWALL",
        "hypothesis": {"statement": "Leading the paywall with the value users get lifts revenue per user",
                       "expectedImpact": "+3% revenue per user", "risks": "more refunds from impulse buys",
                       "successCriteria": "revenue per user up at p < 0.05; refunds stay under 8%"},
        "variants": [{"key": "control", "weight": 50}, {"key": "value_first", "weight": 50}],
        "holdoutCohortId": cohort_id,
        "kpis": [{"metric": "revenue", "role": "PRIMARY", "type": "MEAN", "direction": "INCREASE"},
                 {"metric": "ga4_purchase_revenue", "role": "SECONDARY", "type": "MEAN", "direction": "INCREASE",
                  "definition": {"catalog": "ga4.purchase_revenue"}}],
        "guardrails": [{"metric": "refund", "harmfulDirection": "INCREASE", "absoluteMax": 0.08,
                        "action": "KILL", "minUnitsPerArm": 30}],
        "requiredApprovers": ["demo-approver"],
    }
    eid = _lifecycle(base, definition)["experimentId"]
    ids = [f"demo-paywall-user-{i:05d}" for i in range(units)]
    decided = _call("POST", f"{base}/assign/batch", SERVICE,
                    {"units": [{"unitId": u, "attributes": {"region": "DE"}} for u in ids]})
    arms = {r["unitId"]: r["experiments"][eid]["variant"] for r in decided["results"]
            if r["experiments"].get(eid, {}).get("status") == "ASSIGNED"}
    _wait(lambda: sum(_call("GET", f"{base}/experiments/{eid}/health", VIEWER)["exposures"].values())
          >= len(arms), 60, "exposure log")
    now = utc_now().isoformat()
    events = []
    for unit, arm in arms.items():
        pre = max(0.0, rng.gauss(40, 12))
        value = max(0.0, pre * 0.6 + rng.gauss(18 * (1.06 if arm == "value_first" else 1.0), 6))
        events.append({"eventId": f"pw-rev-{unit}", "unitId": unit, "metric": "revenue", "value": round(value, 2),
                       "preValue": round(pre, 2), "timestamp": now, "region": "DE"})
        events.append({"eventId": f"pw-ref-{unit}", "unitId": unit, "metric": "refund", "timestamp": now,
                       "value": 1.0 if rng.random() < 0.03 else 0.0, "region": "DE"})
    publish_many("kpi_events", events)
    exported = _ga4_export(arms, rng)
    def ingested() -> bool:
        with_data = _call("GET", f"{base}/experiments/{eid}/health", VIEWER)["unitsWithKpis"]
        return min(with_data.get(arm, 0) for arm in set(arms.values())) >= 0.9 * min(Counter(arms.values()).values())

    _sweep_until(base, ingested, 120, "KPI ingestion")
    analysis = _call("POST", f"{base}/analytics/experiments/{eid}/analyses", PM, {})
    _say(f"experiment {eid} keeps RUNNING with {len(arms)} users; analysis {analysis['id']} published")
    ga4 = analysis["results"]["ga4_purchase_revenue"]["arms"]["value_first"]["primary"]
    lift, p = ga4.get("lift"), ga4.get("pValue")
    _say(f"its GA4 metric (catalog ga4.purchase_revenue over {exported} exported events in "
         f"{settings().ga4_dataset}.events_*): purchase revenue per user "
         + (f"{lift:+.1%}, p = {p:.3f}" if lift is not None and p is not None else "not estimable yet"))
    return eid
