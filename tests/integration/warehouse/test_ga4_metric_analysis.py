"""A KPI defined over the Firebase / GA4 export (catalog `ga4.purchase_revenue`, `ga4.conversion`,
`ga4.retention_d7`) analysed through the analytics service: the per-arm statistics equal those
computed in Python from the generated export rows, with attribution after first exposure and
the retention window measured from each unit's own exposure."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from functions.adapters.metric_store import store
from functions.core.stats.sufficient import MomentStats
from functions.models.analytics import AnalysisRequest
from functions.services.analytics import analyses
from functions.services.experiments import repository
from functions.services.metrics import snapshot_stats
from localdev import ga4_sample as ga4
from tests.support.factories import PM, expose, running_experiment

KPIS = [{"metric": metric, "role": role, "type": kind, "definition": {"catalog": f"ga4.{name}"}}
        for metric, role, kind, name in (("purchase_revenue", "PRIMARY", "MEAN", "purchase_revenue"),
                                         ("converted", "SECONDARY", "PROPORTION", "conversion"),
                                         ("retained_d7", "SECONDARY", "PROPORTION", "retention_d7"))]


def _reference(rows, exposed_at, arm_of):
    """arm -> metric -> per-unit values, read from the export rows the way the catalog defines them."""
    from functions.core.metrics.catalog import GA4_PASSIVE_EVENTS

    passive = set(GA4_PASSIVE_EVENTS)
    values: dict[str, dict[str, dict[str, float]]] = {}
    for unit, arm in arm_of.items():
        values.setdefault(arm, {}).setdefault("purchase_revenue", {})[unit] = 0.0
        values[arm].setdefault("converted", {})[unit] = 0.0
        values[arm].setdefault("retained_d7", {})[unit] = 0.0
    for row in rows:
        unit = row["user_id"] or row["user_pseudo_id"]
        if unit not in arm_of:
            continue
        at, start = ga4.at_micros(row["event_timestamp"]), exposed_at
        arm = arm_of[unit]
        if row["event_name"] == "purchase" and at >= start:
            values[arm]["purchase_revenue"][unit] += row["ecommerce"]["purchase_revenue_in_usd"] or 0.0
            values[arm]["converted"][unit] = 1.0
        if row["event_name"] not in passive and start + timedelta(days=7) <= at < start + timedelta(days=8):
            values[arm]["retained_d7"][unit] = 1.0
    return values


@pytest.mark.usefixtures("clean_firestore")
def test_a_ga4_metric_is_analysed_from_the_export():
    rows = ga4.generate(users=300, days=12)
    ga4.load_duckdb(store(), rows)
    units = sorted({r["user_id"] or r["user_pseudo_id"] for r in rows if r["user_id"] or r["user_pseudo_id"]})
    arm_of = {u: ("control" if i % 2 else "treatment") for i, u in enumerate(units)}
    exposed_at = ga4.START + timedelta(hours=12)
    guardrail = {"metric": "refunds", "definition": {"catalog": "ga4.refunds"}, "harmfulDirection": "INCREASE",
                 "absoluteMax": 1000.0, "action": "ALERT"}
    eid = running_experiment(kpis=KPIS, guardrails=[guardrail])
    expose(eid, arm_of, at=exposed_at)
    result = analyses.run(eid, AnalysisRequest(winsorPercentile=None), PM.to_dict())
    reference = _reference(rows, exposed_at, arm_of)
    # the sweep reads the guardrail from the export as well: refunds (USD) per exposed unit
    swept = snapshot_stats.read([repository.load(eid)])[eid].stats
    for arm in ("control", "treatment"):
        refunds = [sum(r["ecommerce"]["refund_value_in_usd"] or 0.0 for r in rows
                       if r["event_name"] == "refund" and (r["user_id"] or r["user_pseudo_id"]) == unit
                       and ga4.at_micros(r["event_timestamp"]) >= exposed_at)
                   for unit, a in arm_of.items() if a == arm]
        assert swept[arm]["refunds"].n == len(refunds) and sum(refunds) > 0
        assert swept[arm]["refunds"].total_x == pytest.approx(sum(refunds), rel=1e-12)
    for metric in ("purchase_revenue", "converted", "retained_d7"):
        stats = result["results"][metric]["inputs"]["stats"]
        for arm in ("control", "treatment"):
            got = MomentStats.from_dict(stats[arm])
            want = np.array(list(reference[arm][metric].values()))
            assert got.n == want.size
            assert got.mean == pytest.approx(want.mean(), rel=1e-12), (metric, arm)
            assert got.var == pytest.approx(want.var(ddof=1), rel=1e-9), (metric, arm)
    # the data exercises what it claims to: purchases before exposure exist and were left out
    early = [r for r in rows if r["event_name"] == "purchase" and ga4.at_micros(r["event_timestamp"]) < exposed_at]
    assert early and sum(reference[a]["retained_d7"][u] for a in reference for u in reference[a]["retained_d7"]) > 10
