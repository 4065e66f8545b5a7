"""The services' own rules, tested without any storage: layer slices, guardrail verdicts,
currency normalisation and definition validation (the embedded metric store in memory)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.adapters.metric_store.duckdb_store import DuckDBStore
from functions.config import settings
from functions.core.errors import AppError
from functions.core.stats.sufficient import MomentStats
from functions.models.experiments import CreateExperiment, KpiEvent
from functions.services.experiments import definitions, guardrails, metrics
from functions.services.experiments.start import free_range
from functions.services.metrics import landing
from tests.support.factories import definition

# -- free_range: the first free slice of a mutual-exclusion layer --

@pytest.mark.parametrize(("occupied", "width", "expected"), [
    ([], 0.3, (0.0, 0.3)),
    ([(0.0, 0.3)], 0.3, (0.3, 0.6)),
    ([(0.3, 0.6)], 0.3, (0.0, 0.3)),
    ([(0.6, 0.9), (0.0, 0.3)], 0.3, (0.3, 0.6)),  # order of the stored ranges does not matter
    ([(0.0, 0.5), (0.2, 0.7)], 0.3, (0.7, 1.0)),  # overlapping ranges: the cursor never moves back
    ([(0.0, 0.7)], 0.3, (0.7, 1.0)),  # an exact fit at the end (within float tolerance)
    ([(0.0, 0.8)], 0.3, None),
    ([(0.1, 0.2), (0.5, 0.6)], 0.45, None),  # enough share in total, no single gap wide enough
    ([], 1.0, (0.0, 1.0)),
])
def test_free_range(occupied: list[tuple[float, float]], width: float, expected: Any) -> None:
    got = free_range(occupied, width)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected)


def test_free_range_never_overlaps_what_it_was_given() -> None:
    rng = random.Random(7)
    for _ in range(500):
        taken: list[tuple[float, float]] = []
        for _ in range(rng.randint(1, 6)):
            slot = free_range(taken, rng.choice([0.05, 0.1, 0.25, 0.4]))
            if slot is None:
                break
            assert 0.0 <= slot[0] < slot[1] <= 1.0 + 1e-9
            assert all(slot[1] <= lo + 1e-9 or slot[0] >= hi - 1e-9 for lo, hi in taken)
            taken.append(slot)


# -- guardrails.evaluate: verdicts per guardrail and treatment arm --

def _doc(**guardrail: Any) -> dict[str, Any]:
    return {"variants": [{"key": "control"}, {"key": "treatment"}, {"key": "bold"}],
            "guardrails": [{"metric": "refund", "minUnitsPerArm": 30, "action": "KILL", **guardrail}]}


def _rate(n: int, events: int) -> MomentStats:
    return MomentStats.from_arrays([1.0] * events + [0.0] * (n - events))


def test_a_refund_rate_far_over_the_limit_breaches_and_is_the_worst() -> None:
    stats = {"control": {"refund": _rate(2000, 40)}, "treatment": {"refund": _rate(2000, 50)},
             "bold": {"refund": _rate(2000, 600)}}
    verdicts = guardrails.evaluate(_doc(absoluteMax=0.08), stats)
    by_arm = {v["arm"]: v for v in verdicts}
    assert set(by_arm) == {"treatment", "bold"}
    assert by_arm["bold"]["status"] == "BREACHED" and by_arm["treatment"]["status"] == "OK"
    worst = guardrails.worst_breach(verdicts)
    assert worst is not None and worst["arm"] == "bold" and worst["action"] == "KILL"


def test_too_few_units_is_insufficient_data_never_a_breach() -> None:
    stats = {"control": {"refund": _rate(10, 1)}, "treatment": {"refund": _rate(10, 10)}}
    doc = _doc(absoluteMax=0.08)
    doc["variants"] = doc["variants"][:2]
    [verdict] = guardrails.evaluate(doc, stats)
    assert verdict["status"] == "INSUFFICIENT_DATA"
    assert guardrails.worst_breach([verdict]) is None


def test_an_arm_without_data_and_non_finite_stats_do_not_breach() -> None:
    broken = replace(_rate(2000, 600), sum_x=float("inf"))
    stats = {"control": {"refund": _rate(2000, 40)}, "bold": {"refund": broken}}
    verdicts = guardrails.evaluate(_doc(absoluteMax=0.08, maxRelativeDegradation=0.1), stats)
    assert len(verdicts) == 4  # two checks for each of two treatment arms
    assert all(v["status"] != "BREACHED" for v in verdicts)


def test_the_most_severe_action_wins_among_breaches() -> None:
    verdicts = [{"status": "BREACHED", "action": a, "arm": a} for a in ("ALERT", "KILL", "PAUSE")]
    verdicts.append({"status": "OK", "action": "KILL", "arm": "ok"})
    assert guardrails.worst_breach(verdicts)["action"] == "KILL"  # type: ignore[index]
    assert guardrails.worst_breach([v for v in verdicts if v["action"] != "KILL"])["action"] == "PAUSE"  # type: ignore[index]


# -- normalise_value: monetary values in the base currency --

def _event(value: float, currency: str | None) -> KpiEvent:
    return KpiEvent(eventId="e1", unitId="u1", metric="revenue", value=value, currency=currency,
                    timestamp=datetime.now(UTC) - timedelta(minutes=1))


def test_values_are_converted_at_the_configured_rate() -> None:
    rates = settings().currency_rates
    assert landing.normalise_value(_event(10.0, None)) == 10.0
    assert landing.normalise_value(_event(10.0, "EUR")) == pytest.approx(10.0 * rates["EUR"])


def test_an_unknown_currency_is_refused_with_the_known_ones() -> None:
    with pytest.raises(AppError) as refused:
        landing.normalise_value(_event(10.0, "XXX"))
    assert (refused.value.status, refused.value.code) == (422, "UNKNOWN_CURRENCY")
    assert refused.value.details["known"] == sorted(settings().currency_rates)  # type: ignore[index]


# -- validate_definition: 422 before anything is stored --

def _body(**overrides: Any) -> CreateExperiment:
    return CreateExperiment.model_validate(definition("hc-1", **overrides))


def test_a_good_definition_passes(warehouse: DuckDBStore) -> None:
    definitions.validate_definition(_body())


@pytest.mark.parametrize(("overrides", "code"), [
    ({"kpis": [{"metric": "revenue", "role": "PRIMARY"}, {"metric": "revenue", "role": "SECONDARY"}]},
     "INVALID_KPI"),
    ({"kpis": [{"metric": "arpu", "role": "PRIMARY", "type": "RATIO", "numerator": "revenue",
                "denominator": "revenue"}]}, "INVALID_KPI"),
    ({"kpis": [{"metric": "revenue", "role": "PRIMARY",
                "definition": {"name": "rev", "source": "no_such_table", "unitColumn": "u",
                               "timestampColumn": "t"}}]}, "METRIC_DEFINITION_INVALID"),
])
def test_a_bad_definition_is_refused_with_its_code(warehouse: DuckDBStore, overrides: dict[str, Any],
                                                   code: str) -> None:
    body = _body(**overrides)
    with pytest.raises(AppError) as refused:
        definitions.validate_definition(body)
    assert (refused.value.status, refused.value.code) == (422, code)


def test_an_unreachable_metric_store_is_503_not_500(monkeypatch: pytest.MonkeyPatch) -> None:
    def down() -> DuckDBStore:
        raise ConnectionError("warehouse down")

    monkeypatch.setattr(metrics, "store", down)
    with pytest.raises(AppError) as refused:
        definitions.validate_definition(_body())
    assert (refused.value.status, refused.value.code) == (503, "METRIC_STORE_UNAVAILABLE")
