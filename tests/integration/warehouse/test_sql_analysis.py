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


@pytest.mark.parametrize("kpi", [{"metric": "revenue", "type": MEAN},
                                 {"metric": "rps", "type": RATIO, "numerator": "revenue", "denominator": "sessions"}])
def test_one_scan_for_the_first_kpi_and_the_population_gives_what_two_queries_give(embedded, kpi):
    landed = traffic("exp-one", 2500, seed=17, metrics=("revenue", "sessions"), holdout=0.2)
    _land(embedded, landed)
    metrics = ("revenue", "sessions")
    scope = analysis_inputs.Scope("exp-one", ARMS, metrics, crossing=("exp-one-u3", "exp-one-u40"))
    everyone = analysis_inputs.Scope("exp-one", (*ARMS, "holdout"), metrics)
    ex = ExclusionConfig(restricted_regions=("US",))
    doc = {"kpis": [kpi]}
    agg, facts = analysis_inputs.aggregated_with_population(doc, kpi, scope, ex, everyone)
    alone = analysis_inputs.aggregated(doc, kpi, scope, ex)
    assert facts == analysis_inputs.population(everyone)
    assert set(facts) == {*ARMS, "holdout"} and facts["holdout"].units > 0 and facts["control"].newest is not None
    assert (agg.assigned, agg.filters, agg.cap, agg.cap_removal, agg.restricted_regions) == (
        alone.assigned, alone.filters, alone.cap, alone.cap_removal, alone.restricted_regions)
    for part in ("stats", "capped", "clean"):
        mine, theirs = getattr(agg, part) or {}, getattr(alone, part) or {}
        assert mine.keys() == theirs.keys()
        assert all(close(mine[a].to_dict(), theirs[a].to_dict()) == [] for a in mine)


def test_the_population_scope_must_match_the_analysis(embedded):
    kpi = {"metric": "revenue", "type": MEAN}
    scope = analysis_inputs.Scope("exp-one", ARMS, ("revenue",))
    for wrong in (analysis_inputs.Scope("exp-two", ARMS, ("revenue",)),
                  analysis_inputs.Scope("exp-one", ARMS, ("revenue", "sessions")),
                  analysis_inputs.Scope("exp-one", ARMS, ("revenue",), left_out=("u1",))):
        with pytest.raises(ValueError, match="population scope"):
            analysis_inputs.aggregated_with_population({"kpis": [kpi]}, kpi, scope, ExclusionConfig(), wrong)
