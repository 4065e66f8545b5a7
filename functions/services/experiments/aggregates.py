"""Reading the sharded sufficient statistics back: O(variants x metrics x shards) documents."""

from __future__ import annotations

from collections import defaultdict

from functions.core.stats.sufficient import MomentStats, RatioStats
from functions.services.experiments import repository


def read(experiment_id: str) -> dict[str, dict[str, MomentStats | RatioStats]]:
    """variant -> metric -> merged stats (ratio metrics are keyed ratio-<num>-per-<den>)."""
    merged: dict[str, dict[str, MomentStats | RatioStats]] = defaultdict(dict)
    for snap in repository.ref(experiment_id).collection(repository.AGGREGATES).stream():
        raw = snap.to_dict() or {}
        variant, metric = raw.get("variant"), raw.get("metric")
        if not variant or not metric:
            continue
        current = merged[variant].get(metric)
        stats: MomentStats | RatioStats
        if metric.startswith("ratio-"):
            stats = RatioStats.from_dict(raw)
            stats = current + stats if isinstance(current, RatioStats) else stats
        else:
            stats = MomentStats.from_dict(raw)
            stats = current + stats if isinstance(current, MomentStats) else stats
        merged[variant][metric] = stats
    return {variant: dict(metrics) for variant, metrics in merged.items()}


def units_per_variant(stats: dict[str, dict[str, MomentStats | RatioStats]]) -> dict[str, float]:
    """Units with any observation, per variant (max over metrics: every unit has one metric at least)."""
    return {variant: max((s.n for s in metrics.values()), default=0.0) for variant, metrics in stats.items()}
