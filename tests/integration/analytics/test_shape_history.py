"""A MEAN KPI's skewness gate reads the metric's history before the experiment started
(`ANALYSIS_HISTORY_DAYS`), unless the KPI configures its own: samples that look symmetric are
refused when the history says the metric is heavy-tailed, and the analysis says so and replays."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from functions.config import reset_settings
from functions.core.ids import random_hex
from functions.models.experiments import KpiEvent
from functions.services.analytics import metric_profile
from functions.services.experiments import repository
from functions.services.experiments.kpi import ingest
from functions.services.holdouts.exposures import record_exposures
from localdev.tokens import bearer
from tests.support.factories import kpi, running_experiment

PM = bearer("pm-alice", ["pm"])


@pytest.fixture
def history_days(monkeypatch):
    def set_days(days: int) -> None:
        monkeypatch.setenv("ANALYSIS_HISTORY_DAYS", str(days))
        reset_settings()

    yield set_days
    monkeypatch.delenv("ANALYSIS_HISTORY_DAYS", raising=False)
    reset_settings()


def _land(experiment_id: str, values: dict[str, float], arms: dict[str, str] | None, at: datetime,
          metric: str | None = None) -> None:
    rows = [{"unitId": u, "experimentId": experiment_id, "variant": (arms or {}).get(u, "control"),
             "inHoldout": False, "status": "ASSIGNED"} for u in values]
    assert record_exposures(rows, at - timedelta(hours=1)) == len(rows)
    events = [kpi(u, metric or METRIC, v, timestamp=at.isoformat()) for u, v in values.items() if v]
    assert ingest([KpiEvent.model_validate(e) for e in events]).accepted == len(events)


METRIC = f"spend-{random_hex(8)}"


def test_symmetric_samples_of_a_heavy_tailed_metric_wait_for_the_units_its_history_asks(function_client,
                                                                                         history_days):
    kpis = [{"metric": METRIC, "role": "PRIMARY", "type": "MEAN"}]
    rng = random.Random(31)
    yesterday = datetime.now(UTC) - timedelta(days=1)
    # history: 1 500 units of an earlier experiment the day before, a tenth of them spending heavy-tailed amounts
    past = running_experiment(kpis=kpis)
    _land(past, {f"{past}-h{i}": rng.lognormvariate(2.0, 2.0) if rng.random() < 0.1 else 0.0 for i in range(1500)},
          None, yesterday)
    # the experiment: 150 units per arm, every one spending 10-20, so its samples look symmetric
    eid = running_experiment(kpis=kpis)
    units = {f"{eid}-u{i}": 10 + 10 * rng.random() for i in range(300)}
    arms = {u: "control" if i % 2 else "treatment" for i, u in enumerate(units)}
    _land(eid, units, arms, datetime.now(UTC))
    started = repository.load(eid)["startedAt"]
    client = function_client("analytics")

    history_days(28)
    body = client.post(f"/experiments/{eid}/analyses", json={}, headers=PM).get_json()
    result = body["results"][METRIC]
    shape = result["shapeHistory"]
    read = metric_profile.profile(METRIC, 28, until=started)
    assert shape["source"] == "profile" and shape["units"] == read["units"] >= 1500
    assert shape["nonZeroUnits"] >= 100 and shape["skewness"] == pytest.approx(read["skewness"], rel=1e-9)
    primary = result["arms"]["treatment"]["primary"]
    assert primary["status"] == "SKEWED_INSUFFICIENT_DATA" and primary["extra"]["shapeFrom"] == "history"
    assert primary["extra"]["neededUnits"]["treatment"] >= 355 * shape["skewness"] ** 2 * 0.99
    assert result["arms"]["treatment"]["recommendation"]["decision"] == "KEEP_RUNNING"
    assert client.post(f"/analyses/{body['id']}/replay", headers=PM).get_json()["reproduced"] is True

    history_days(0)  # no automatic history: the same samples pass on their own (symmetric) shape
    plain = client.post(f"/experiments/{eid}/analyses", json={}, headers=PM).get_json()["results"][METRIC]
    assert plain["shapeHistory"] is None
    assert plain["arms"]["treatment"]["primary"]["status"] == "OK"
    assert plain["arms"]["treatment"]["primary"]["extra"]["shapeFrom"] == "sample"


def test_a_configured_skewness_wins_over_the_history(function_client, history_days):
    history_days(28)
    eid = running_experiment(kpis=[{"metric": METRIC, "role": "PRIMARY", "type": "MEAN", "historicalSkewness": 0.25}])
    rng = random.Random(32)
    units = {f"{eid}-u{i}": 10 + 10 * rng.random() for i in range(60)}
    _land(eid, units, {u: "control" if i % 2 else "treatment" for i, u in enumerate(units)}, datetime.now(UTC))
    result = function_client("analytics").post(f"/experiments/{eid}/analyses", json={},
                                               headers=PM).get_json()["results"][METRIC]
    assert result["shapeHistory"] == {"source": "configured", "skewness": 0.25}
    primary = result["arms"]["treatment"]["primary"]
    assert primary["extra"]["shapeFrom"] == "history" and primary["status"] == "OK"  # 0.25/sqrt(30) < 1/sqrt(355)


def test_a_sparse_history_is_read_and_asks_for_more_units_rather_than_leaving_the_shape_to_the_samples():
    """Six spenders among 1 200 units: too few to say much about their amounts, but enough to say
    the metric is rare, and rarity alone is skew (about 1/sqrt(share)). The history is used; the
    samples' own shape would have covered 62-74% on 1% payers (`bench calibration`, thin history)."""
    metric = f"refund-{random_hex(8)}"
    rng = random.Random(33)
    yesterday = datetime.now(UTC) - timedelta(days=1)
    past = running_experiment(kpis=[{"metric": metric, "role": "PRIMARY", "type": "MEAN"}])
    spenders = set(rng.sample(range(1200), 6))
    _land(past, {f"{past}-s{i}": 5 + 20 * rng.random() if i in spenders else 0.0 for i in range(1200)}, None,
          yesterday, metric)
    read = metric_profile.history_before(metric, datetime.now(UTC), 28)
    assert read is not None and read["units"] == 1200 and read["nonZeroUnits"] == 6
    assert read["skewness"] > 10  # about sqrt(1200 / 6) = 14: thousands of units per arm before an interval
    assert metric_profile.history_before(metric, yesterday - timedelta(hours=2), 28) is None  # before any unit
