"""The sweep's statistics for every running experiment in one metric-store query."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from functions.adapters.metric_store import queries, store
from functions.core.stats.sufficient import MomentStats
from functions.services.metrics.analysis_inputs import tracked_metrics

ExperimentStats = dict[str, dict[str, MomentStats]]  # arm -> metric -> stats


def _spec(doc: Mapping[str, Any]) -> list[str]:
    kinds = {k["metric"]: k for k in doc.get("kpis") or [] if k.get("type") != "RATIO"}
    out = []
    for metric in tracked_metrics(doc):
        kpi = kinds.get(metric, {})
        cap = kpi.get("perUnitCap")
        out.append(queries.SPEC_SEPARATOR.join(
            [doc["id"], metric, "1" if kpi.get("type") == "PROPORTION" else "0", repr(float(cap)) if cap else ""]))
    return out


CLOCK_MARGIN = timedelta(days=1)  # exposures stamped by other machines may precede the start a little


def _started(doc: Mapping[str, Any]) -> datetime:
    """Where the experiment's events can begin: its start, less a margin for clock skew. It bounds
    the partitions the sweep reads; the join on first exposure decides what counts."""
    at = doc.get("startedAt")
    return at - CLOCK_MARGIN if isinstance(at, datetime) else datetime(2000, 1, 1, tzinfo=UTC)


def read(docs: Iterable[Mapping[str, Any]]) -> dict[str, ExperimentStats]:
    """experiment -> arm -> metric -> stats, for every arm with exposed units (holdout included)."""
    docs = [d for d in docs if d.get("id")]
    spec = [s for d in docs for s in _spec(d)]
    out: dict[str, ExperimentStats] = {d["id"]: {} for d in docs}
    if not spec:
        return out
    params = {"experiments": [d["id"] for d in docs], "metrics": sorted({m for d in docs for m in tracked_metrics(d)}),
              "since": min(_started(d) for d in docs), "spec": spec}
    for row in store().query(queries.snapshot(), params):
        stats = MomentStats(*(float(row[c] or 0.0) for c in ("n", "sx", "sxx", "sp", "spp", "sxp", "kx", "kp")))
        out[row["experiment_id"]].setdefault(row["arm"], {})[row["metric"]] = stats
    return out


def units_per_arm(stats: ExperimentStats) -> dict[str, float]:
    """Units exposed per arm (every metric counts every exposed unit)."""
    return {arm: max((s.n for s in metrics.values()), default=0.0) for arm, metrics in stats.items()}
