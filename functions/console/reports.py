"""Holdouts, Program, Ledger and the board-ready audit report: pages over the API routes."""

from __future__ import annotations

from collections import Counter
from statistics import mean
from typing import Any

import flask

from functions.adapters.auth import Principal
from functions.config import settings
from functions.console import charts, pages, wording
from functions.console.apicall import call
from functions.console.pages import A, E, H, L, parallel
from functions.console.web import Page, route
from functions.core.clock import parse_time, utc_now
from functions.core.errors import AppError, BadRequest, ErrorCode
from functions.models.common import is_document_id

CONTAMINATION_TARGET = 0.01
SYSTEM_ACTORS = ("system:sweep",)


# -- holdouts ----------------------------------------------------------------------------------

def holdouts(who: Principal, metric: str = "revenue") -> dict[str, Any]:
    effect = pages.in_background(lambda: call(A, "GET", "/programme/holdout-effect", who, query={"metric": metric}))
    cohorts = call(H, "GET", "/cohorts", who)["cohorts"]
    got = parallel(**{f"h{i}": (lambda c=c: call(H, "GET", f"/cohorts/{c['id']}/health", who))
                      for i, c in enumerate(cohorts)},
                   **{f"c{i}": (lambda c=c: call(H, "GET", f"/cohorts/{c['id']}/components", who,
                                                 query={"limit": "50"}))
                      for i, c in enumerate(cohorts)})
    rows = []
    for i, c in enumerate(cohorts):
        health = got.get(f"h{i}") or {}
        rate = float(health.get("contaminationRate") or 0.0)
        components = (got.get(f"c{i}") or {}).get("components") or []
        rows.append({"cohort": c, "health": health, "rate": rate,
                     "gauge": charts.gauge(f"Contamination of {c['name']}", rate, CONTAMINATION_TARGET),
                     "components": [x for x in components if x.get("holdoutMembers") and x.get("treatedMembers")]})
    return {"rows": rows, "target": CONTAMINATION_TARGET, **programme_effect(effect, metric)}


def programme_effect(pending: Any, metric: str) -> dict[str, Any]:
    """The programme's long-term effect against the global holdout, or the API's reason why not."""
    try:
        effect = pending.result()
    except AppError as err:
        return {"effect": None, "effectError": err.to_dict()["error"], "metric": metric}
    est = effect["estimate"]
    chart = charts.forest(f"Lift of {metric} per unit: shipped variants against the global holdout",
                          "the square is the estimate, the bar its 95% confidence interval",
                          [charts.ForestRow("everything shipped vs holdout", est.get("lift"),
                                            *(est.get("liftCi") or [None, None]), emphasis=True)])
    return {"effect": effect, "est": est, "effectChart": chart, "metric": metric,
            "currency": settings().base_currency}


# -- program -----------------------------------------------------------------------------------

def _quarter(value: Any) -> str | None:
    t = parse_time(value)
    return f"{t.year}-Q{(t.month - 1) // 3 + 1}" if t else None


def _primary_estimate(analysis: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None, dict[str, Any]]:
    metric = analysis.get("primaryMetric")
    result = (analysis.get("results") or {}).get(metric) or {}
    arms = result.get("arms") or {}
    best = None
    for arm, data in arms.items():
        if best is None or (data.get("primary") or {}).get("pValue", 1) < (arms[best].get("primary") or {}).get(
                "pValue", 1):
            best = arm
    return best, (arms[best].get("primary") if best else None), (arms[best].get("recommendation") or {}) if best \
        else {}


def _harm_refuted(analysis: dict[str, Any] | None, breach: dict[str, Any]) -> bool:
    """A later analysis of the guardrail's own metric on that arm finds no significant harm
    (only when the metric is analysed; otherwise the kill stands)."""
    metric, arm = breach.get("guardrail"), breach.get("arm")
    result = ((analysis or {}).get("results") or {}).get(metric) or {}
    est = ((result.get("arms") or {}).get(arm) or {}).get("primary") or {}
    if est.get("pValue") is None or est.get("diff") is None:
        return False
    harmful = est["diff"] < 0 if breach.get("kind") == "ABSOLUTE_MIN" else est["diff"] > 0
    return not (harmful and est["pValue"] < 0.05)


def program(who: Principal) -> dict[str, Any]:
    """The seed's success metrics, computed from what is stored now."""
    rows = call(E, "GET", "/summaries", who, query={"limit": "500"})["experiments"]
    started = [r for r in rows if r.get("startedAt")]
    per_quarter = Counter(q for r in started for q in [_quarter(r["startedAt"])] if q)
    got = parallel(**{r["id"]: (lambda r=r: pages.analysis(who, r["analysisId"]))
                      for r in started if r.get("analysisId")},
                   **{f"ev:{r['id']}": (lambda r=r: call(E, "GET", f"/{r['id']}/events", who)["events"])
                      for r in started},
                   cohorts=lambda: call(H, "GET", "/cohorts", who)["cohorts"])
    analysed, significant, to_results, winners_value = 0, 0, [], 0.0
    auto_stops, false_positives = 0, 0
    for r in started:
        analysis = got.get(r["id"])
        events = got.get(f"ev:{r['id']}") or []
        if analysis:
            analysed += 1
            _arm, est, rec = _primary_estimate(analysis)
            if est and est.get("pValue") is not None and est["pValue"] < 0.05:
                significant += 1
            t0, t1 = parse_time(r["startedAt"]), parse_time(analysis.get("createdAt"))
            if t0 and t1:
                to_results.append((t1 - t0).total_seconds() / 86400)
            if rec.get("decision") == "SHIP" and est and r.get("daysRunning"):
                exposures = call(E, "GET", f"/{r['id']}/health", who)["exposures"]
                per_day = sum(exposures.values()) / max(float(r["daysRunning"]), 1 / 24)
                impact = wording.monthly_impact(est, per_day)
                winners_value += impact["value"] if impact else 0.0
        for i, e in enumerate(events):
            if e.get("action") in ("KILL", "PAUSE") and (e.get("actor") or {}).get("uid") in SYSTEM_ACTORS:
                auto_stops += 1
                resumed = any(x.get("action") == "RESUME" for x in events[i + 1:])
                false_positives += bool(resumed or _harm_refuted(analysis, e.get("details") or {}))
    cohorts = got.get("cohorts") or []
    health = parallel(**{c["id"]: (lambda c=c: call(H, "GET", f"/cohorts/{c['id']}/health", who)) for c in cohorts})
    rates = [float(h.get("contaminationRate") or 0) for k, h in health.items() if k != "_errors" and h]
    currency = settings().base_currency
    metrics = [
        {"name": "Experiments started per quarter", "target": "20 or more",
         "value": ", ".join(f"{q}: {n}" for q, n in sorted(per_quarter.items())) or "none yet",
         "ok": bool(per_quarter) and max(per_quarter.values()) >= 20},
        {"name": "Share of analysed experiments reaching p < 0.05", "target": "more than 80%",
         "value": f"{significant / analysed:.0%} ({significant} of {analysed})" if analysed else "no analyses yet",
         "ok": analysed > 0 and significant / analysed > 0.8},
        {"name": "Holdout contamination (worst cohort)", "target": "below 1%",
         "value": f"{max(rates):.2%}" if rates else "no cohorts", "ok": bool(rates) and max(rates) < 0.01},
        {"name": "Kill-switch false positives", "target": "below 5%",
         "value": (f"{false_positives / auto_stops:.0%} ({false_positives} of {auto_stops} automatic stops later "
                   "resumed, or refuted by an analysis of the guarded metric)") if auto_stops else "no automatic stops",
         "ok": auto_stops == 0 or false_positives / auto_stops < 0.05},
        {"name": "Average time to first results", "target": "under 30 days",
         "value": f"{mean(to_results):.1f} days" if to_results else "no results yet",
         "ok": bool(to_results) and mean(to_results) < 30},
        {"name": f"Net monthly impact of winners (primary KPI, at current traffic, in the base currency {currency})",
         "target": "positive",
         "value": wording.money(winners_value, currency) + " per month", "ok": winners_value > 0},
    ]
    return {"metrics": metrics, "experiments": len(rows), "started": len(started)}


# -- ledger and board report -------------------------------------------------------------------

def ledger(who: Principal) -> dict[str, Any]:
    got = parallel(verify=lambda: call(L, "GET", "/verify", who),
                   checkpoints=lambda: call(L, "GET", "/checkpoints", who)["checkpoints"],
                   experiments=lambda: call(E, "GET", "/summaries", who, query={"limit": "500"})["experiments"])
    return {"verify": got["verify"] or {}, "checkpoints": got["checkpoints"] or [],
            "experiments": got["experiments"] or []}


def board_report(who: Principal, experiment_id: str) -> dict[str, Any]:
    """The audit report's content is the ledger's (`GET /ledger/reports/{id}`, one source for this
    page and the ledger's own HTML); the console adds the charts: the guardrails' bounds over the
    sweeps, the rollout path as a step chart, and the forest plot of each KPI."""
    pending = pages.in_background(lambda: call(L, "GET", f"/reports/{experiment_id}", who))
    detail = pages.experiment_detail(who, experiment_id)
    report = pending.result()
    results = detail["results"] or {}
    forests = {k["metric"]: k for k in results.get("kpis") or []}
    path = [{**r, "fromStage": r.get("from"), "toStage": r.get("to")} for r in report.get("rolloutPath") or []]
    return {**detail, "report": report, "forests": forests, "money": results.get("currency"),
            "stageChart": pages.stage_chart(path), "generatedAt": wording.when(utc_now())}


@route("GET", "/holdouts")
def holdouts_page(page: Page) -> flask.Response:
    metric = page.request.args.get("metric", "revenue")
    if not is_document_id(metric):
        raise BadRequest("metric: letters, digits, dot, dash or underscore", code=ErrorCode.BAD_METRIC)
    return page.render("holdouts.html", **holdouts(page.who, metric))


@route("GET", "/program")
def program_page(page: Page) -> flask.Response:
    return page.render("program.html", **program(page.who))


@route("GET", "/ledger")
def ledger_page(page: Page) -> flask.Response:
    return page.render("ledger.html", **ledger(page.who))


@route("GET", "/ledger/reports/{experiment_id}")
def report_page(page: Page, experiment_id: str) -> flask.Response:
    return page.render("report.html", **board_report(page.who, experiment_id))


@route("GET", "/ledger/export.csv")
def export_csv(page: Page) -> flask.Response:
    """The API's CSV export, downloaded with the console session."""
    query = {"format": "csv", **({"experimentId": page.request.args["experimentId"]}
                                 if page.request.args.get("experimentId") else {})}
    response = call(L, "GET", "/exports", page.who, query=query)
    response.headers["Content-Disposition"] = "attachment; filename=ledger.csv"
    return response

