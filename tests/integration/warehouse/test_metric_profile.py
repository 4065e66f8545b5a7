"""A metric's history profile (`GET /metrics/{metric}/profile`) on both engines against scipy
over the per-unit totals written out in Python: zeros for exposed units without events, each
event id once, only the window, only consenting units, only the metric asked for."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from scipy import stats as scipy_stats

from functions.services.analytics import metric_profile

NOW = datetime.now(UTC)
_EVENTS_OF_LAND: list[dict] = []  # the in-window revenue events the last `_land` wrote


def _exposure(unit: str, experiment: str, consent: bool = True) -> dict:
    at = NOW - timedelta(days=40)
    return {"event_id": f"{experiment}|{unit}", "experiment_id": experiment, "unit_id": unit, "status": "ASSIGNED",
            "variant": "control", "analytics_consent": consent, "exposed_at": at, "received_at": at}


def _event(eid: str, unit: str, value: float, days_ago: float, metric: str = "revenue") -> dict:
    at = NOW - timedelta(days=days_ago)
    return {"event_id": eid, "unit_id": unit, "metric": metric, "value": value, "pre_value": None, "region": "DE",
            "event_time": at, "received_at": at}


def _land(store) -> dict[str, dict[str, float]]:
    """Rows for two experiments, and the per-unit totals each profile must see."""
    rng = random.Random(21)
    exposures, events = [], []
    totals: dict[str, dict[str, float]] = {"all": {}, "exp-b": {}}
    for i in range(400):
        unit, experiment = f"u{i}", "exp-a" if i < 300 else "exp-b"
        exposures.append(_exposure(unit, experiment))
        totals["all"][unit] = 0.0
        if experiment == "exp-b":
            totals["exp-b"][unit] = 0.0
        if rng.random() < 0.08:  # sparse, heavy-tailed spend
            for j in range(rng.randint(1, 3)):
                value = round(rng.lognormvariate(3.0, 1.5), 2)
                events.append(_event(f"{unit}-{j}", unit, value, rng.uniform(0.5, 27.5)))
                totals["all"][unit] += value
                if experiment == "exp-b":
                    totals["exp-b"][unit] += value
    exposures.append({**exposures[0], "received_at": NOW})  # a redelivered exposure
    events += [dict(events[0], received_at=NOW), dict(events[1], value=5e6, received_at=NOW)]  # redelivered ids
    events.append(_event("old", "u1", 7e5, 30.0))  # before the window
    events.append(_event("future", "u1", 7e5, -1.0))  # after it
    events.append(_event("other", "u2", 7e5, 1.0, metric="sessions"))  # another metric
    exposures.append(_exposure("nc", "exp-a", consent=False))  # no consent: not in the population
    events.append(_event("nc-1", "nc", 7e5, 1.0))
    events.append(_event("never-exposed", "stranger", 7e5, 1.0))  # exposed to no experiment
    store.append("exposures", exposures)
    store.append("kpi_events", events)
    _EVENTS_OF_LAND[:] = [e for e in events
                          if e["metric"] == "revenue" and NOW - timedelta(days=28) <= e["event_time"] < NOW]
    return totals


def test_the_profile_is_scipys_skewness_of_the_per_unit_totals(store, monkeypatch):
    totals = _land(store)
    monkeypatch.setattr(metric_profile, "store", lambda: store)
    for experiment, expected in ((None, totals["all"]), ("exp-b", totals["exp-b"])):
        got = metric_profile.profile("revenue", 28, experiment)
        values = list(expected.values())
        assert got["units"] == len(values) and got["nonZeroUnits"] == sum(v != 0 for v in values)
        assert got["mean"] == pytest.approx(sum(values) / len(values), rel=1e-9)
        assert got["sd"] == pytest.approx(scipy_stats.tstd(values), rel=1e-9)
        skew = float(scipy_stats.skew(values, bias=False))
        assert got["skewness"] == pytest.approx(skew, rel=1e-9)
        assert 355 * skew**2 * (1 - 1e-9) <= got["neededUnitsPerArm"] < 355 * skew**2 * (1 + 1e-9) + 1
        assert got["skewness"] > 3  # sparse lognormal spend: the gate's history is far from symmetric


def test_without_data_the_profile_has_no_shape(store, monkeypatch):
    monkeypatch.setattr(metric_profile, "store", lambda: store)
    got = metric_profile.profile("revenue", 28)
    assert (got["units"], got["skewness"], got["neededUnitsPerArm"], got["mean"]) == (0, None, None, None)
    store.append("exposures", [_exposure(f"z{i}", "exp-z") for i in range(5)])
    flat = metric_profile.profile("revenue", 28)  # five units, all zero: no spread, no shape
    assert (flat["units"], flat["sd"], flat["skewness"]) == (5, 0.0, None)


@pytest.mark.parametrize(("units", "spenders", "usable"),
                         [(999, 200, False), (1000, 0, False), (1000, 1, True), (1000, 30, True)])
def test_an_automatic_history_needs_enough_units_and_a_spread(store, monkeypatch, units, spenders, usable):
    """1000 units, however few with a value: a sparse history reads a large skewness and asks for
    more units (docs/calibration.md, thin history); with no value at all it has no shape."""
    monkeypatch.setattr(metric_profile, "store", lambda: store)
    store.append("exposures", [_exposure(f"a{i}", "exp-h") for i in range(units)])
    store.append("kpi_events", [_event(f"a{i}-1", f"a{i}", 5.0 + i, 2.0) for i in range(spenders)])
    read = metric_profile.history_before("revenue", NOW, 28)
    assert (read is not None) == usable
    if usable:
        assert read["units"] == units and read["nonZeroUnits"] == spenders
    # the window ends at the start: the same values a day after it are not history
    assert metric_profile.history_before("revenue", NOW - timedelta(days=3), 28) is None
    assert metric_profile.history_before("revenue", NOW, 0) is None


def test_the_profile_reads_the_metric_as_the_analysis_shapes_it(store, monkeypatch):
    """A cap, a 0/1 metric and a count per unit: the same shaping the analysis applies."""
    from functions.adapters.metric_store import queries

    totals = _land(store)["all"]
    monkeypatch.setattr(metric_profile, "store", lambda: store)
    counts = {u: 0 for u in totals}
    seen: set[str] = set()
    for eid, unit in ((e["event_id"], e["unit_id"]) for e in _EVENTS_OF_LAND):
        if unit in counts and eid not in seen:
            seen.add(eid)
            counts[unit] += 1
    cases = [(queries.landed("metric", cap=40.0), [min(v, 40.0) for v in totals.values()]),
             (queries.landed("metric", binary=True), [float(v > 0) for v in totals.values()]),
             (queries.MetricPart(queries.kpi_facts("metric"), aggregation=queries.COUNT), list(counts.values()))]
    for part, values in cases:
        got = metric_profile.profile("revenue", 28, part=part)
        assert got["units"] == len(values) and got["nonZeroUnits"] == sum(v != 0 for v in values)
        assert got["skewness"] == pytest.approx(float(scipy_stats.skew(values, bias=False)), rel=1e-9)
