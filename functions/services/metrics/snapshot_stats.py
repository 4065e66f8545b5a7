"""The sweep's statistics for every running experiment in one metric-store query."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from functions.adapters.metric_store import queries, store
from functions.core.stats.corrections import ExclusionConfig
from functions.core.stats.sufficient import MomentStats
from functions.services.experiments import metrics
from functions.services.metrics.analysis_inputs import HOLDOUT_ARM, Scope, aggregated, tracked_metrics

ArmStats = dict[str, dict[str, MomentStats]]  # arm -> metric -> stats
CLOCK_MARGIN = timedelta(days=1)  # exposures stamped by other machines may precede the start a little


@dataclass
class ExperimentStats:
    """One experiment's sweep statistics, and per arm the units with any event of its metrics
    (the most of any one metric)."""

    stats: ArmStats = field(default_factory=dict)
    with_data: dict[str, float] = field(default_factory=dict)

    def units_per_arm(self) -> dict[str, float]:
        """Units exposed per arm (every metric counts every exposed unit)."""
        return {arm: max((s.n for s in metrics.values()), default=0.0) for arm, metrics in self.stats.items()}


def _spec(doc: Mapping[str, Any]) -> list[str]:
    kinds = {k["metric"]: k for k in doc.get("kpis") or [] if k.get("type") != "RATIO"}
    out = []
    for metric in tracked_metrics(doc):
        kpi = kinds.get(metric, {})
        cap = kpi.get("perUnitCap")
        out.append(queries.SPEC_SEPARATOR.join(
            [doc["id"], metric, "1" if kpi.get("type") == "PROPORTION" else "0", repr(float(cap)) if cap else ""]))
    return out


def _started(doc: Mapping[str, Any]) -> datetime:
    """Where the experiment's events can begin: its start, less a margin for clock skew. It bounds
    the partitions the sweep reads; the join on first exposure decides what counts."""
    at = doc.get("startedAt")
    return at - CLOCK_MARGIN if isinstance(at, datetime) else datetime(2000, 1, 1, tzinfo=UTC)


def read(docs: Iterable[Mapping[str, Any]]) -> dict[str, ExperimentStats]:
    """experiment -> its statistics, for every arm with exposed units (holdout included)."""
    docs = [d for d in docs if d.get("id")]
    spec = [s for d in docs for s in _spec(d)]
    out: dict[str, ExperimentStats] = {d["id"]: ExperimentStats() for d in docs}
    if not spec:
        return out
    params = {"experiments": [d["id"] for d in docs], "metrics": sorted({m for d in docs for m in tracked_metrics(d)}),
              "since": min(_started(d) for d in docs), "spec": spec}
    for row in store().query(queries.snapshot(), params):
        stats = MomentStats(*(float(row[c] or 0.0) for c in ("n", "sx", "sxx", "sp", "spp", "sxp", "kx", "kp", "sxxx")))
        found = out[row["experiment_id"]]
        found.stats.setdefault(row["arm"], {})[row["metric"]] = stats
        found.with_data[row["arm"]] = max(found.with_data.get(row["arm"], 0.0), float(row["with_data"] or 0))
    for doc in docs:
        _defined_guardrails(doc, out[doc["id"]])
    return out


# Guardrails over a user's table: every exposed unit with analytics consent, nothing else removed.
ALL_UNITS = ExclusionConfig(winsor_percentile=None, max_events_per_day=1e300, mad_threshold=1e300,
                            max_identical_timestamp_share=2.0)


def _defined_guardrails(doc: Mapping[str, Any], found: ExperimentStats) -> None:
    """A guardrail defined over a user's own table (a fact-table definition) is read by the same
    query an analysis runs, one per such guardrail: a bounded number, whatever the units."""
    guarded = [g for g in doc.get("guardrails") or [] if g.get("definition") is not None]
    if not guarded:
        return
    arms = tuple([v["key"] for v in doc.get("variants") or []] + [HOLDOUT_ARM])
    scope = Scope(doc["id"], arms, tuple(tracked_metrics(doc)))
    for g in guarded:
        spec = {"metric": g["metric"], "type": "MEAN"}
        agg = aggregated(doc, spec, scope, ALL_UNITS, {"value": metrics.guardrail_facts(g)})
        for arm, stats in agg.stats.items():
            if isinstance(stats, MomentStats) and stats.n:
                found.stats.setdefault(arm, {})[g["metric"]] = stats
