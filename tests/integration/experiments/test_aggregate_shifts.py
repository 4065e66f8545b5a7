"""Sums about the arm's mean, computed in the metric store: a metric near 1e11 keeps its variance
through landing and the sweep's query, and every delivery order gives the same statistics."""

from __future__ import annotations

import numpy as np
import pytest

from functions.models.experiments import KpiEvent
from functions.services.experiments.kpi import ingest
from tests.support.factories import expose, kpi, running_experiment
from tests.support.warehouse import sweep_stats

LEVEL = 1e11  # events are capped at 1e12 each; raw Σx² here is ~6e22, far beyond 53 bits


def test_sums_about_the_reference_level_keep_the_variance_in_any_order():
    deltas = [0.25, -1.5, 2.0, 0.75, -0.5, 1.25]  # unit totals 1e12 + delta (exact in float64)
    docs = []
    for k, order in enumerate(([0, 1, 2, 3, 4, 5], [5, 3, 1, 0, 4, 2])):
        # KPI events are facts about units, counted in every experiment a unit is exposed to:
        # each round has its own units
        eid = running_experiment(kpis=[{"metric": "ltv", "role": "PRIMARY", "type": "MEAN"}])
        expose(eid, {f"u{k}-{i}": "treatment" for i in range(6)})
        events = [kpi(f"u{k}-{i}", "ltv", LEVEL + deltas[i] - 1.0, preValue=LEVEL + deltas[i] / 2) for i in order]
        events += [kpi(f"u{k}-{i}", "ltv", 1.0) for i in reversed(order)]  # a second event per unit
        assert ingest([KpiEvent.model_validate(e) for e in events]).accepted == 12
        stats = sweep_stats(eid)["treatment"]["ltv"]
        assert stats.n == 6 and abs(stats.shift_x - LEVEL) < 2 and abs(stats.shift_pre - LEVEL) < 2
        assert stats.mean - LEVEL == pytest.approx(np.mean(deltas), rel=1e-12)
        assert stats.var == pytest.approx(np.var(deltas, ddof=1), rel=1e-12)  # raw Σx² would give 0 or junk
        assert stats.cov_x_pre == pytest.approx(np.var(deltas, ddof=1) / 2, rel=1e-12)
        centred = np.asarray(deltas) - np.mean(deltas)
        assert stats.m3 == pytest.approx(float((centred**3).sum()), rel=1e-9)  # the skewness gate's input
        docs.append(stats)
    assert docs[0] == docs[1]  # the same sums whatever the delivery order (all exact in binary here)
