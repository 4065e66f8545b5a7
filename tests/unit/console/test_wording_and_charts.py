"""Console building blocks without any backend: verdict wording, one timestamp format, SVG marks."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from functions.console import charts, wording
from functions.console.reports import _harm_refuted
from functions.core.wording import verdict_sentence


def test_verdict_sentence_reads_like_the_issue_asks():
    est = {"lift": 0.067, "liftCi": [0.045, 0.088], "pValue": 0.0004}
    text = verdict_sentence("plus10", "revenue", "MEAN", est, {"decision": "SHIP"}, True)
    assert text == "plus10: revenue per user +6.7% (95% CI +4.5% to +8.8%), p < 0.001; guardrails held; ship"


def test_a_breached_guardrail_overrides_ship_and_missing_estimates_say_so():
    est = {"lift": 0.02, "liftCi": [-0.01, 0.05], "pValue": 0.2}
    assert verdict_sentence("b", "conv", "PROPORTION", est, {"decision": "SHIP"}, False).endswith(
        "a guardrail was breached; do not ship (guardrail breached)")
    assert "no estimate yet" in verdict_sentence("b", "x", "MEAN", None, None, None)


def test_one_timestamp_format_whatever_the_input():
    t = datetime(2026, 11, 30, 10, 46, 45, 123456, tzinfo=UTC)
    forms = [t, t.isoformat(), t.isoformat().replace("+00:00", "Z"), t.replace(tzinfo=None),
             t.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin"))]
    assert {wording.when(f) for f in forms} == {"2026-11-30T10:46:45Z"}


def test_time_chart_draws_one_mark_per_point_and_the_markers():
    t0 = datetime(2026, 11, 30, tzinfo=UTC)
    pts = [(t0 + timedelta(minutes=5 * i), 0.01 * i) for i in range(7)]
    svg = charts.time_chart(charts.Chart("g", "d", [charts.Series("bound", pts)], [charts.Line("limit", 0.05)],
                                         [charts.Marker(t0 + timedelta(minutes=20), "KILL by system", "kill")]))
    assert svg.count('class="point"') == len(pts)
    assert svg.count('class="marker kill"') == 1 and 'class="limit-line' in svg
    assert svg.startswith("<svg") and "<title>g</title>" in svg
    empty = charts.time_chart(charts.Chart("e", "d", [charts.Series("s", [])]))
    assert "no data yet" in empty and 'class="point"' not in empty


def test_chart_text_is_escaped():
    svg = charts.forest("<script>", "d", [charts.ForestRow("<b>arm</b>", 0.1, 0.0, 0.2)])
    assert "<script>" not in svg and "<b>" not in svg and svg.count('class="estimate"') == 1


def test_forest_positions_follow_the_estimates():
    rows = [charts.ForestRow("a", 0.05, 0.01, 0.09), charts.ForestRow("b", -0.02, -0.06, 0.02),
            charts.ForestRow("none", None, None, None)]
    svg = charts.forest("f", "d", rows)
    xs = [float(x) for x in re.findall(r'class="estimate" x="([0-9.]+)"', svg)]
    assert len(xs) == 2 and xs[0] > xs[1]


def test_contamination_gauge_is_bad_above_target():
    assert "gauge-ok" in charts.gauge("c", 0.004, 0.01) and "gauge-bad" in charts.gauge("c", 0.02, 0.01)


def test_a_kill_is_a_false_positive_only_when_the_guarded_metrics_analysis_refutes_harm():
    breach = {"guardrail": "refund", "arm": "t", "kind": "ABSOLUTE_MAX"}

    def analysis(diff, p):
        return {"results": {"refund": {"arms": {"t": {"primary": {"diff": diff, "pValue": p}}}}}}

    assert _harm_refuted(analysis(0.2, 0.001), breach) is False
    assert _harm_refuted(analysis(0.01, 0.4), breach) is True
    assert _harm_refuted(analysis(-0.05, 0.01), breach) is True
    assert _harm_refuted({"results": {}}, breach) is False and _harm_refuted(None, breach) is False


def test_the_forest_plot_says_which_estimates_are_capped():
    """The decision uses the uncapped estimate; the capped comparison (another estimand) sits
    beside it, named with its cap, and no uncapped row claims a cap."""
    from functions.console.pages import _results

    def est(method, lift):
        return {"method": method, "lift": lift, "liftCi": [lift - 0.02, lift + 0.02], "pValue": 0.01}

    analysis = {"id": "a1", "createdAt": "2026-11-30T10:00:00Z", "results": {"revenue": {
        "role": "PRIMARY", "type": "MEAN", "exclusions": {"winsorCap": 71.54},
        "arms": {"plus10": {"primary": est("cuped", 0.05), "welch": est("welch", 0.04),
                            "capped": {"primary": est("cuped", 0.03), "welch": est("welch", 0.02)},
                            "recommendation": {"decision": "SHIP"}}}}}}
    doc = {"definition": {"kpis": [{"metric": "revenue", "type": "MEAN"}]}}
    forest = str(_results(analysis, doc, True, None)["kpis"][0]["forest"])
    for label in ("plus10: CUPED, uncapped (decides)", "plus10: raw, uncapped",
                  "plus10: CUPED, capped at 71.54", "plus10: Welch, capped at 71.54"):
        assert label in forest, label
    assert forest.count("(decides)") == 2  # one row decides: its label and its tooltip
