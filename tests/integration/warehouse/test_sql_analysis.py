"""The analysis computed in the metric store equals the in-memory pipeline on the same landed
rows: exposure join, attribution after first exposure, de-duplication, every exclusion with its
per-region balance, the exact percentile cap, and the sufficient statistics (to 1e-9)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from functions.adapters.metric_store.duckdb_store import DuckDBStore
from functions.core.stats.corrections import ExclusionConfig
from functions.core.stats.pipeline import MEAN, PROPORTION, RATIO, AnalysisConfig, analyse_aggregated, analyse_units
from functions.services.metrics import analysis_inputs
from tests.support.warehouse import close, traffic, unit_arrays

ARMS = ("control", "plus10")


@pytest.fixture
def embedded(monkeypatch):
    engine = DuckDBStore()
    engine.ensure_schema()
    monkeypatch.setattr(analysis_inputs, "store", lambda: engine)
    yield engine
    engine.close()


def _land(engine, landed):
    engine.append("exposures", landed.exposures)
    engine.append("kpi_events", landed.kpi_events)
    engine.append("fraud_flags", landed.fraud_flags)


def _compare(sql_result, memory_result):
    strip = {"fingerprint", "inputs"}
    a = {k: v for k, v in sql_result.items() if k not in strip}
    b = {k: v for k, v in memory_result.items() if k not in strip}
    assert close(a, b) == []
    for key in ("stats", "cappedStats", "spilloverStats"):
        assert close(sql_result["inputs"].get(key), memory_result["inputs"].get(key), rel=1e-9) == []


@pytest.mark.parametrize("case", [
    {"type": MEAN, "ex": ExclusionConfig(restricted_regions=("US",))},
    {"type": MEAN, "ex": ExclusionConfig(winsor_percentile=None, max_value=500.0, max_events_per_day=40.0)},
    {"type": MEAN, "ex": ExclusionConfig(winsor_cap=25.0, mad_threshold=3.0), "crossing": True},
    {"type": PROPORTION, "ex": ExclusionConfig(restricted_regions=("FR", "DE"))},
    {"type": RATIO, "ex": ExclusionConfig(), "crossing": True},
])
def test_sql_analysis_equals_the_in_memory_pipeline(embedded, case):
    landed = traffic("exp-sql", 4000, seed=len(str(case)), metrics=("revenue", "sessions"))
    _land(embedded, landed)
    metrics = ("revenue", "sessions")
    crossing = {f"exp-sql-u{i}" for i in range(0, 4000, 37)} if case.get("crossing") else None
    kpi = ({"metric": "rps", "type": RATIO, "numerator": "revenue", "denominator": "sessions"}
           if case["type"] == RATIO else {"metric": "revenue", "type": case["type"]})
    doc = {"kpis": [kpi], "guardrails": [{"metric": "sessions"}]}
    scope = analysis_inputs.Scope("exp-sql", ARMS, metrics, crossing=tuple(sorted(crossing)) if crossing else None)
    cfg = AnalysisConfig(control="control", metric_type=case["type"], exclusions=case["ex"],
                         expected_split={"control": 0.6, "plus10": 0.4})
    agg = analysis_inputs.aggregated(doc, kpi, scope, case["ex"])
    arrays = unit_arrays(landed, "exp-sql", ARMS, kpi.get("numerator", "revenue"), metrics, crossing,
                         binary=case["type"] == PROPORTION, denominator=kpi.get("denominator"))
    memory = analyse_units(arrays, cfg)
    _compare(analyse_aggregated(agg, cfg), memory)
    # the data exercises what it claims to: exclusions of every kind, and a cap where one applies
    removed = memory["exclusions"]["removed"]
    assert all(sum(removed[f].values()) > 0 for f in ("consent", "fraud", "bot")), removed
    if case["type"] == MEAN and case["ex"].winsor_percentile is not None:
        assert memory["exclusions"]["winsorCap"] and sum(memory["exclusions"]["capped"].values()) > 0


def test_the_holdout_comparison_leaves_out_contaminated_members(embedded):
    landed = traffic("exp-hold", 3000, seed=11, holdout=0.3)
    _land(embedded, landed)
    held = sorted({r["unit_id"] for r in landed.exposures if r["status"] == "HOLDOUT"})
    contaminated = tuple(held[::5])
    kpi = {"metric": "revenue", "type": MEAN}
    ex = ExclusionConfig()
    scope = analysis_inputs.Scope("exp-hold", ("holdout", *ARMS), ("revenue",), left_out=contaminated)
    cfg = AnalysisConfig(control="holdout", exclusions=ex)
    agg = analysis_inputs.aggregated({"kpis": [kpi]}, kpi, scope, ex)
    arrays = unit_arrays(landed, "exp-hold", ("holdout", *ARMS), "revenue", ("revenue",))
    keep = ~__import__("numpy").isin(
        sorted(u for u in {r["unit_id"] for r in landed.exposures} if u in set(held)), contaminated)
    holdout = arrays["holdout"]
    arrays["holdout"] = type(holdout)(**{k: (v[keep] if v is not None else None) for k, v in vars(holdout).items()})
    _compare(analyse_aggregated(agg, cfg), analyse_units(arrays, cfg))
    assert agg.assigned["holdout"] == len(arrays["holdout"])


def test_a_redelivered_batch_changes_nothing(embedded):
    landed = traffic("exp-dup", 1500, seed=5)
    _land(embedded, landed)
    kpi = {"metric": "revenue", "type": MEAN}
    scope = analysis_inputs.Scope("exp-dup", ARMS, ("revenue",))
    once = analysis_inputs.aggregated({"kpis": [kpi]}, kpi, scope, ExclusionConfig())
    _land(embedded, replace(landed))  # every row lands a second time
    twice = analysis_inputs.aggregated({"kpis": [kpi]}, kpi, scope, ExclusionConfig())
    assert (once.assigned, once.filters, once.cap, once.cap_removal) == (
        twice.assigned, twice.filters, twice.cap, twice.cap_removal)
    for arm in ARMS:  # the same sums, up to the order the engine adds them in
        assert close(once.stats[arm].to_dict(), twice.stats[arm].to_dict()) == []
