"""The sweep's and the analysis's SQL give the same statistics on both engines (the embedded
DuckDB and BigQuery's API, emulated) over the same landed rows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from functions.core.stats.corrections import ExclusionConfig
from functions.core.stats.pipeline import MEAN, PROPORTION, RATIO
from functions.core.stats.sufficient import MomentStats
from functions.services.metrics import analysis_inputs, snapshot_stats
from tests.support.warehouse import close, traffic

ARMS = ("control", "plus10")
DOC = {"id": "exp-agree", "startedAt": datetime(2026, 10, 31, tzinfo=UTC),
       "variants": [{"key": "control"}, {"key": "plus10"}],
       "kpis": [{"metric": "revenue", "role": "PRIMARY", "type": MEAN},
                {"metric": "converted", "role": "SECONDARY", "type": PROPORTION},
                {"metric": "rps", "role": "SECONDARY", "type": RATIO, "numerator": "revenue",
                 "denominator": "sessions"}],
       "guardrails": [{"metric": "sessions"}]}


def _results(engine, monkeypatch, landed) -> dict:
    engine.append("exposures", landed.exposures)
    engine.append("kpi_events", landed.kpi_events)
    engine.append("fraud_flags", landed.fraud_flags)
    monkeypatch.setattr(analysis_inputs, "store", lambda: engine)
    monkeypatch.setattr(snapshot_stats, "store", lambda: engine)
    scope = analysis_inputs.Scope("exp-agree", ARMS, ("converted", "revenue", "sessions"),
                                  crossing=("exp-agree-u3", "exp-agree-u8"))
    ex = ExclusionConfig(restricted_regions=("US",), mad_threshold=3.0)
    out = {}
    for kpi in DOC["kpis"]:
        agg = analysis_inputs.aggregated(DOC, kpi, scope, ex)
        out[kpi["metric"]] = {"assigned": agg.assigned, "cap": agg.cap,
                              "filters": {f: [r.removed, r.removed_by_region] for f, r in agg.filters.items()},
                              "stats": {a: _moments(s) for a, s in agg.stats.items()},
                              "clean": {a: _moments(s) for a, s in (agg.clean or {}).items()},
                              "capped": {a: _moments(s) for a, s in (agg.capped or {}).items()}}
    swept = snapshot_stats.read([DOC])["exp-agree"]
    out["sweep"] = {arm: {m: _moments(s) for m, s in metrics.items()} for arm, metrics in swept.stats.items()}
    out["with_data"] = swept.with_data
    out["population"] = {arm: vars(f) for arm, f in analysis_inputs.population(
        analysis_inputs.Scope("exp-agree", (*ARMS, "holdout"), ("revenue", "sessions"))).items()}
    agg, facts = analysis_inputs.aggregated_with_population(
        DOC, DOC["kpis"][0], scope, ex, analysis_inputs.Scope("exp-agree", (*ARMS, "holdout"), scope.activity_metrics))
    out["with_population"] = {"stats": {a: _moments(s) for a, s in agg.stats.items()},
                              "facts": {arm: vars(f) for arm, f in facts.items()}}
    return out


def _moments(s):
    """Centred moments, and the third of a mean metric (the skewness gate's input)."""
    return [*s.centred(), *([s.m3] if isinstance(s, MomentStats) else [])]


@pytest.mark.emulator
def test_the_analysis_and_sweep_sql_agree_on_both_engines(duckdb_store, bigquery_store, monkeypatch):
    landed = traffic("exp-agree", 600, seed=9, metrics=("revenue", "sessions", "converted"))
    embedded = _results(duckdb_store, monkeypatch, landed)
    emulated = _results(bigquery_store, monkeypatch, landed)
    assert close(embedded, emulated, rel=1e-9) == []
    assert sum(embedded["revenue"]["filters"]["bot"][0].values()) > 0  # the data exercises the filters
    assert embedded["revenue"]["cap"] is not None
    assert all(len(v) == 7 and v[6] != 0 for v in embedded["revenue"]["stats"].values())  # third moments read
