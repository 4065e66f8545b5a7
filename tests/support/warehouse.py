"""Landed rows generated like an offer's traffic, and a plain-Python reading of them that the SQL
in the metric store must agree with: attribution after first exposure, de-duplication by event
id, bot and data-quality signals per unit. Written independently of the SQL, row by row."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from functions.core.stats.corrections import UnitData

LATE = timedelta(hours=6)
T0 = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass
class Landed:
    exposures: list[dict[str, Any]] = field(default_factory=list)
    kpi_events: list[dict[str, Any]] = field(default_factory=list)
    fraud_flags: list[dict[str, Any]] = field(default_factory=list)


def traffic(experiment_id: str, units: int, seed: int, arms: Mapping[str, float] | None = None,
            metrics: tuple[str, ...] = ("revenue",), holdout: float = 0.1) -> Landed:
    """Sparse heavy-tailed revenue, bursts of bot-like activity, missing regions, late events,
    events before exposure, duplicates, no-consent units, units decided into two arms, fraud."""
    rng = random.Random(seed)
    arms = dict(arms or {"control": 0.6, "plus10": 0.4})
    out = Landed()
    for i in range(units):
        unit = f"{experiment_id}-u{i}"
        status = "HOLDOUT" if rng.random() < holdout else "ASSIGNED"
        variant = None if status == "HOLDOUT" else rng.choices(list(arms), list(arms.values()))[0]
        at = T0 + timedelta(seconds=rng.randrange(10 * 86400))
        row = {"experiment_id": experiment_id, "unit_id": unit, "status": status, "variant": variant,
               "analytics_consent": rng.random() > 0.05, "exposed_at": at, "received_at": at}
        out.exposures.append({**row, "event_id": f"{unit}|{status}|{variant}"})
        if rng.random() < 0.1:  # redelivered
            out.exposures.append({**row, "event_id": f"{unit}|{status}|{variant}", "received_at": at + LATE})
        if rng.random() < 0.01 and status == "ASSIGNED":  # decided into another arm later
            other = next(a for a in arms if a != variant)
            out.exposures.append({**row, "variant": other, "event_id": f"{unit}|{status}|{other}",
                                  "exposed_at": at + timedelta(hours=1)})
        burst = rng.random() < 0.03
        count = rng.choice([0, 0, 1, 2, 3, 5]) if not burst else rng.randrange(40, 120)
        for j in range(count):
            metric = rng.choice(metrics)
            when = at + timedelta(seconds=rng.randrange(-86400, 5 * 86400)) if not burst else at + timedelta(
                seconds=rng.randrange(0, 3) * 60)
            payer = rng.random() < 0.2
            event = {"event_id": f"{unit}-e{j}", "unit_id": unit, "metric": metric,
                     "value": round(rng.lognormvariate(2.0, 1.6), 4) if payer else 0.0,
                     "pre_value": round(rng.uniform(0, 30), 3) if rng.random() < 0.5 else None,
                     "region": rng.choice(["DE", "US", "FR", None]), "event_time": when,
                     "received_at": when + (timedelta(hours=7) if rng.random() < 0.1 else timedelta(seconds=5))}
            out.kpi_events.append(event)
            if rng.random() < 0.05:  # redelivered, landed again later
                out.kpi_events.append({**event, "received_at": event["received_at"] + timedelta(minutes=3)})
        if rng.random() < 0.02:
            out.fraud_flags.append({"event_id": f"f-{unit}", "unit_id": unit, "reason": "chargeback",
                                    "source": "risk", "flagged_at": at, "received_at": at})
    return out


def _first_landed(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    best: dict[str, dict[str, Any]] = {}
    for row in rows:
        kept = best.get(row["event_id"])
        if kept is None or row["received_at"] < kept["received_at"]:
            best[row["event_id"]] = row
    return list(best.values())


@dataclass
class UnitFacts:
    arm: str
    consent: bool
    exposed_at: datetime
    values: dict[str, float] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)  # metrics with an attributed event
    pre: dict[str, tuple[datetime, str, float]] = field(default_factory=dict)
    times: list[datetime] = field(default_factory=list)
    late: int = 0
    region: tuple[datetime, str, str] | None = None


def units_of(landed: Landed, experiment_id: str, metrics: Iterable[str]) -> dict[str, UnitFacts]:
    """unit -> its facts in one experiment, read the way the analysis defines them."""
    decisions: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in _first_landed(r for r in landed.exposures if r["experiment_id"] == experiment_id):
        decisions[row["unit_id"]].append(row)
    units: dict[str, UnitFacts] = {}
    for unit, rows in decisions.items():
        kinds = {(r["status"], r["variant"] or "") for r in rows}
        first = min(rows, key=lambda r: r["exposed_at"])
        if len(kinds) != 1 or first["status"] not in ("ASSIGNED", "HOLDOUT"):
            continue
        arm = "holdout" if first["status"] == "HOLDOUT" else first["variant"]
        units[unit] = UnitFacts(arm, all(r["analytics_consent"] for r in rows), first["exposed_at"])
    wanted = set(metrics)
    for event in sorted(_first_landed(landed.kpi_events), key=lambda e: (e["event_time"], e["event_id"])):
        facts = units.get(event["unit_id"])
        if facts is None or event["metric"] not in wanted or event["event_time"] < facts.exposed_at:
            continue
        metric = event["metric"]
        facts.values[metric] = facts.values.get(metric, 0.0) + event["value"]
        facts.seen.add(metric)
        if event["pre_value"] is not None and metric not in facts.pre:
            facts.pre[metric] = (event["event_time"], event["event_id"], event["pre_value"])
        facts.times.append(event["event_time"])
        facts.late += int(event["received_at"] > event["event_time"] + LATE)
        if event["region"] is not None:
            facts.region = (event["event_time"], event["event_id"], event["region"])
    return units


def unit_arrays(landed: Landed, experiment_id: str, arms: Iterable[str], metric: str, metrics: Iterable[str],
                crossing: set[str] | None = None, binary: bool = False,
                denominator: str | None = None) -> dict[str, UnitData]:
    """The pipeline's unit-level input per arm (`analyse_units`), from the landed rows."""
    units = units_of(landed, experiment_id, metrics)
    flagged = {f["unit_id"] for f in landed.fraud_flags}
    out = {}
    for arm in arms:
        rows = sorted((u, f) for u, f in units.items() if f.arm == arm)
        events = np.array([float(len(f.times)) for _, f in rows])
        spans = [(max(f.times) - min(f.times)).total_seconds() / 86400 if f.times else 0.0 for _, f in rows]
        same = np.array([float(len(f.times) - len(set(f.times))) for _, f in rows])
        value = np.array([f.values.get(metric, 0.0) for _, f in rows])
        if binary:
            value = (value > 0).astype(float)
        out[arm] = UnitData(
            value=value,
            denominator=np.array([f.values.get(denominator, 0.0) for _, f in rows]) if denominator else None,
            pre=None if denominator else np.array([f.pre[metric][2] if metric in f.pre else 0.0 for _, f in rows]),
            fraud=np.array([u in flagged for u, _ in rows], dtype=bool),
            consent=np.array([f.consent for _, f in rows], dtype=bool),
            region=np.array([f.region[2] if f.region else "unknown" for _, f in rows], dtype=object),
            events=events,
            active_days=np.maximum(np.ceil(np.array(spans)), 1.0),
            identical_timestamp_share=np.where(events >= 10, same / np.maximum(events - 1, 1), 0.0),
            crosses_arms=np.array([u in crossing for u, _ in rows], dtype=bool) if crossing is not None else None,
        )
    return out


def close(a: Any, b: Any, rel: float = 1e-9, path: str = "") -> list[str]:
    """Paths where two JSON-like results differ beyond `rel` (numbers) or at all (the rest)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{path}: keys {sorted(set(a) ^ set(b))}"]
        return [d for k in a for d in close(a[k], b[k], rel, f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: lengths {len(a)} != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in close(x, y, rel, f"{path}[{i}]")]
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, int | float) or not isinstance(b, int | float):
        return [] if a == b else [f"{path}: {a!r} != {b!r}"]
    if math.isclose(a, b, rel_tol=rel, abs_tol=rel):
        return []
    return [f"{path}: {a!r} != {b!r}"]


def sweep_stats(experiment_id: str) -> dict[str, dict[str, Any]]:
    """arm -> metric -> the statistics the sweep reads for one experiment."""
    from functions.services.experiments import repository
    from functions.services.metrics import snapshot_stats

    return snapshot_stats.read([repository.load(experiment_id)])[experiment_id].stats
