"""Sharded sums about the KPI's reference level: a metric near 1e11 keeps its variance through
ingestion, shards and the merge, and every delivery order writes the same shard documents."""

from __future__ import annotations

import numpy as np
import pytest

from functions.models.experiments import KpiEvent
from functions.services.experiments import aggregates, repository
from functions.services.experiments.kpi import ingest
from tests.support.factories import expose, kpi, running_experiment

LEVEL = 1e11  # events are capped at 1e12 each; raw Σx² here is ~6e22, far beyond 53 bits


def _shards(eid: str) -> dict[str, dict]:
    return {s.id: s.to_dict() for s in repository.ref(eid).collection(repository.AGGREGATES).stream()}


def test_sums_about_the_reference_level_keep_the_variance_in_any_order():
    deltas = [0.25, -1.5, 2.0, 0.75, -0.5, 1.25]  # unit totals 1e12 + delta (exact in float64)
    docs = []
    for order in ([0, 1, 2, 3, 4, 5], [5, 3, 1, 0, 4, 2]):
        eid = running_experiment(kpis=[{"metric": "ltv", "role": "PRIMARY", "type": "MEAN", "referenceLevel": LEVEL}])
        expose(eid, {f"u{i}": "treatment" for i in range(6)})
        events = [kpi(f"u{i}", "ltv", LEVEL + deltas[i] - 1.0, preValue=LEVEL + deltas[i] / 2) for i in order]
        events += [kpi(f"u{i}", "ltv", 1.0) for i in reversed(order)]  # a second event per unit
        assert ingest([KpiEvent.model_validate(e) for e in events]).accepted == 12
        stats = aggregates.read(eid)["treatment"]["ltv"]
        assert stats.n == 6 and (stats.shift_x, stats.shift_pre) == (LEVEL, LEVEL)
        assert stats.mean - LEVEL == pytest.approx(np.mean(deltas), rel=1e-12)
        assert stats.var == pytest.approx(np.var(deltas, ddof=1), rel=1e-12)  # raw Σx² would give 0 or junk
        assert stats.cov_x_pre == pytest.approx(np.var(deltas, ddof=1) / 2, rel=1e-12)
        assert all((d["shift_x"], d["shift_pre"]) == (LEVEL, LEVEL) for d in _shards(eid).values())
        docs.append(stats)
    assert docs[0] == docs[1]  # the same sums whatever the delivery order (all exact in binary here)
