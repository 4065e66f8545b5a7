"""What each page shows, gathered through the API routes as the signed-in person.

Every read goes through `apicall.call`, so a page shows exactly what that person's role may
read; independent reads of one page run side by side (they are network round trips).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any

from functions.adapters.auth import Principal
from functions.api import analytics as analytics_api
from functions.api import experiments as experiments_api
from functions.api import holdouts as holdouts_api
from functions.api import ledger as ledger_api
from functions.api import rollouts as rollouts_api
from functions.console import charts, wording
from functions.console.apicall import allowed, call
from functions.core.clock import parse_time, utc_now
from functions.core.errors import AppError
from functions.core.wording import reason_text, verdict_sentence

E, A, R, H, L = (experiments_api.router, analytics_api.router, rollouts_api.router, holdouts_api.router,
                 ledger_api.router)
_pool = ThreadPoolExecutor(max_workers=12, thread_name_prefix="console")


def in_background(job: Callable[[], Any]) -> Future[Any]:
    """One read started now, its result taken later (beside a `parallel` batch run meanwhile)."""
    return _pool.submit(job)


def parallel(**jobs: Callable[[], Any]) -> dict[str, Any]:
    """Run independent reads side by side; a coded error becomes None for that part only (the
    error itself is kept under "_raised" for a caller that cannot do without that part)."""
    futures = {name: _pool.submit(job) for name, job in jobs.items()}
    out: dict[str, Any] = {}
    for name, future in futures.items():
        try:
            out[name] = future.result()
        except AppError as err:
            out[name] = None
            out.setdefault("_errors", {})[name] = err.to_dict()["error"]
            out.setdefault("_raised", {})[name] = err
    return out


# -- experiments list --------------------------------------------------------------------------

STATES = ("DRAFT", "PENDING_APPROVAL", "APPROVED", "RUNNING", "PAUSED", "KILLED", "COMPLETED", "CANCELLED")


def experiment_list(who: Principal, q: str = "", state: str = "", view: str = "", guardrail: str = "",
                    ) -> dict[str, Any]:
    query = {"limit": "500", **({"state": state} if state in STATES else {})}
    rows = call(E, "GET", "/summaries", who, query=query)["experiments"]
    needle = q.strip().lower()
    if needle:
        rows = [r for r in rows if needle in " ".join(str(r.get(k) or "") for k in
                                                    ("id", "name", "owner", "primaryMetric", "offerType")).lower()]
    if guardrail:
        rows = [r for r in rows if r["guardrailStatus"] == guardrail]
    approver = allowed(E, "POST", "/any/approve", who)
    waiting = [r for r in rows if approver and r["state"] == "PENDING_APPROVAL" and r["owner"] != who.uid and
               (who.uid in r["pendingApprovers"] or (not r["requiredApprovers"] and not r["approvedBy"]))]
    if view == "waiting":
        rows = waiting
    elif view == "mine":
        rows = [r for r in rows if r["owner"] == who.uid]
    return {"rows": rows, "waitingCount": len(waiting), "states": STATES, "q": q, "state": state, "view": view,
            "guardrail": guardrail, "canCreate": allowed(E, "POST", "/", who)}


# -- one experiment ----------------------------------------------------------------------------

ACTIONS: dict[str, tuple[Any, str, str, str]] = {
    # action -> (router, path template, body field for the text, what the confirmation says)
    "submit": (E, "/{id}/submit", "reason", "Submit this definition for approval."),
    "approve": (E, "/{id}/approve", "comment", "Approve this experiment as it is defined now."),
    "reject": (E, "/{id}/reject", "reason", "Reject it back to draft; the author sees your reason."),
    "start": (E, "/{id}/start", "reason", "Start: users begin to be assigned and exposed."),
    "pause": (E, "/{id}/pause", "reason", "Pause: no new exposures; the kill switch tells apps to stop."),
    "resume": (E, "/{id}/resume", "reason", "Resume exposures."),
    "kill": (E, "/{id}/kill", "reason", "Kill: ends the experiment for good and publishes the kill switch."),
    "complete": (E, "/{id}/complete", "reason", "Complete the experiment."),
    "advance": (R, "/{id}/advance", "reason", "Advance the rollout one stage now."),
    "rollback": (R, "/{id}/rollback", "reason", "Roll back to the previous stage (and pause the rollout)."),
    "analyse": (A, "/experiments/{id}/analyses", "", "Run and publish a new analysis (immutable, in the ledger)."),
}
NEEDS_TEXT = {"reject", "pause", "kill", "rollback"}
ACTION_STATES = {"submit": {"DRAFT"}, "approve": {"PENDING_APPROVAL"}, "reject": {"PENDING_APPROVAL"},
                 "start": {"APPROVED"}, "pause": {"RUNNING"}, "resume": {"PAUSED"}, "kill": {"RUNNING", "PAUSED"},
                 "complete": {"RUNNING", "PAUSED"}, "advance": {"RUNNING"}, "rollback": {"RUNNING"},
                 "analyse": {"RUNNING", "PAUSED", "KILLED", "COMPLETED"}}


def run_action(who: Principal, experiment_id: str, action: str, text: str) -> Any:
    router, template, field, _ = ACTIONS[action]
    path = template.replace("{id}", experiment_id)
    body = {field: text} if field else {}
    return call(router, "POST", path, who, body=body)


def available_actions(who: Principal, experiment_id: str, state: str) -> list[dict[str, Any]]:
    out = []
    for action, (router, template, field, says) in ACTIONS.items():
        if state in ACTION_STATES[action] and allowed(router, "POST", template.replace("{id}", experiment_id), who):
            out.append({"action": action, "says": says, "field": field, "required": action in NEEDS_TEXT})
    return out


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list):
        out = {}
        for i, v in enumerate(value):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out or {prefix: []}
    return {prefix: value}


def definition_diff(approved: dict[str, Any] | None, current: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Field-level differences between what was approved and what is defined now (None when no
    approved copy is stored)."""
    if approved is None:
        return None
    a, b = _flatten(approved), _flatten(current)
    return [{"field": k, "approved": a.get(k), "current": b.get(k)} for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k)]


# experiment -> (its version when read, the approved definition from the ledger): every approval,
# edit or state change bumps the version; the current definition is always read fresh, so a
# document changed behind the API's back still shows in the diff.
_approved: dict[str, tuple[int, dict[str, Any] | None]] = {}


def approved_definition(who: Principal, experiment_id: str) -> dict[str, Any] | None:
    """The definition as approved, from the hashed ledger (the API's export): the one created,
    if no edit came before the approval (an edit's entry names the changed fields, not values).
    A definition document changed behind the API's back then shows up in the diff."""
    export = call(L, "GET", "/exports", who, query={"experimentId": experiment_id})
    definition, approved = None, None
    for line in export.get_data(as_text=True).splitlines()[1:]:
        body = json.loads(json.loads(line)["canonical"])
        action, payload = body.get("action"), body.get("payload") or {}
        if action == "EXPERIMENT_CREATED":
            definition = payload.get("definition")
        elif action == "EXPERIMENT_EDIT":
            definition = None
        elif action == "EXPERIMENT_APPROVE":
            approved = definition
    return approved


def _approved_copy(events: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, str | None]:
    """The approved definition and content hash, where the approval recorded them."""
    for event in reversed(events):
        if event.get("action") in ("APPROVE", "APPROVAL_RECORDED"):
            details = event.get("details") or {}
            return (details.get("definition") or details.get("approvedDefinition"),
                    details.get("contentHash") or details.get("approvedHash"))
    return None, None


def _guardrail_charts(series: list[dict[str, Any]], events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, str], list[tuple[datetime, dict[str, Any]]]] = {}
    for snap in series:
        t = parse_time(snap.get("takenAt"))
        if t is None:
            continue
        for v in snap.get("guardrails") or []:
            groups.setdefault((v.get("guardrail", "?"), v.get("arm", "?"), v.get("kind", "?")), []).append((t, v))
    markers = [charts.Marker(t, f"{e['action']} by {(e.get('actor') or {}).get('uid', '?')}", e["action"].lower())
               for e in events if e.get("action") in ("KILL", "PAUSE")
               for t in [parse_time(e.get("at"))] if t is not None]
    out = []
    for (metric, arm, kind), points in sorted(groups.items()):
        bound = [(t, float(v["bound"])) for t, v in points if v.get("bound") is not None]
        observed = [(t, float(v["observed"])) for t, v in points if v.get("observed") is not None]
        limits = [v.get("limit") for _, v in points if v.get("limit") is not None]
        lines = []
        if limits:
            limit = float(limits[-1])
            harmful_down = kind == "ABSOLUTE_MIN" or (kind == "RELATIVE_DEGRADATION" and bound and bound[-1][1] < 0)
            y = -limit if kind == "RELATIVE_DEGRADATION" and harmful_down else limit
            lines.append(charts.Line(f"limit {y:+.3g}" if kind == "RELATIVE_DEGRADATION" else f"limit {y:.3g}", y))
        latest = points[-1][1]
        title = f"Guardrail {metric} on {arm} ({kind.replace('_', ' ').lower()})"
        chart = charts.Chart(title, "always-valid bound over time against its limit, with kill and pause markers",
                             [charts.Series("always-valid bound", bound),
                              charts.Series("observed", observed, dashed=True)], lines, markers)
        out.append({"title": title, "status": latest.get("status"), "detail": latest.get("detail"),
                    "svg": charts.time_chart(chart)})
    return out


def _exposure_chart(series: list[dict[str, Any]], arms: list[str]) -> Any:
    lines = []
    for arm in arms:
        pts = [(t, float((s.get("units") or {}).get(arm, 0))) for s in series
               for t in [parse_time(s.get("takenAt"))] if t is not None]
        lines.append(charts.Series(arm, pts))
    return charts.time_chart(charts.Chart("Units with KPI data per arm over time",
                                          "one line per arm, one point per sweep snapshot", lines,
                                          y_format="{:,.0f}"))


def stage_chart(rollout_events: list[dict[str, Any]]) -> Any:
    pts = [(t, float(e.get("toStage") or 0.0)) for e in rollout_events
           for t in [parse_time(e.get("at"))] if t is not None]
    return charts.time_chart(charts.Chart("Rollout stage over time", "share of eligible users exposed to "
                                          "treatment, one step per rollout change",
                                          [charts.Series("stage", pts)], y_format="{:.0%}", step=True))


SHORT_METHODS = {"cuped": "CUPED", "welch": "Welch", "two_proportion_z": "z-test", "zTest": "z-test",
                 "delta_ratio": "delta method"}  # forest-plot labels must fit the chart's label column


def _results(analysis: dict[str, Any] | None, doc: dict[str, Any], guardrails_held: bool | None,
             units_per_day: float | None) -> dict[str, Any] | None:
    if not analysis:
        return None
    kpis = {k["metric"]: k for k in doc["definition"].get("kpis") or []}
    money = wording.Money.of(doc["definition"])
    out_kpis = []
    for metric, result in (analysis.get("results") or {}).items():
        kpi = kpis.get(metric, {})
        rows, verdicts = [], []
        cap = (result.get("exclusions") or {}).get("winsorCap")
        capped = f", capped at {cap:.4g}" if cap is not None else ", capped"
        for arm, data in (result.get("arms") or {}).items():
            primary = data.get("primary") or {}
            method = SHORT_METHODS.get(str(primary.get("method")), str(primary.get("method")))
            # The decision uses the uncapped estimate; the capped comparison (another estimand) is beside it.
            rows.append(charts.ForestRow(f"{arm}: {method}, uncapped (decides)", primary.get("lift"),
                                         *(primary.get("liftCi") or [None, None]), emphasis=True))
            for key, label in (("welch", "raw"), ("cuped", "CUPED"), ("zTest", "raw z-test")):
                est = data.get(key)
                if est and est.get("lift") is not None and est.get("method") != primary.get("method"):
                    rows.append(charts.ForestRow(f"{arm}: {label}, uncapped", est.get("lift"),
                                                 *(est.get("liftCi") or [None, None])))
            shown = set()
            for est in (data.get("capped") or {}).values():
                if est and est.get("lift") is not None and est.get("method") not in shown:
                    shown.add(est.get("method"))
                    label = SHORT_METHODS.get(str(est.get("method")), str(est.get("method")))
                    rows.append(charts.ForestRow(f"{arm}: {label}{capped}", est.get("lift"),
                                                 *(est.get("liftCi") or [None, None])))
            spill = ((result.get("spilloverExcluded") or {}).get("arms") or {}).get(arm)
            if spill and spill.get("lift") is not None:
                rows.append(charts.ForestRow(f"{arm}: without units linked across arms", spill.get("lift"),
                                             *(spill.get("liftCi") or [None, None])))
            held_out = (((result.get("holdout") or {}).get("arms") or {}).get(arm)) or {}
            if held_out.get("lift") is not None:
                rows.append(charts.ForestRow(f"{arm}: against the holdout (long-term)", held_out.get("lift"),
                                             *(held_out.get("liftCi") or [None, None])))
            rec = data.get("recommendation") or {}
            monetary = kpi.get("type", "MEAN") == "MEAN"
            impact = wording.monthly_impact(primary, units_per_day, money.rate) if monetary else None
            # the same figure in the base currency, beside a page shown in the experiment's own
            in_base = wording.monthly_impact(primary, units_per_day) if monetary and money.rate != 1.0 else None
            verdicts.append({
                "arm": arm, "sentence": verdict_sentence(arm, metric, kpi.get("type"), primary, rec,
                                                                 guardrails_held),
                "trust": rec.get("trust"), "decision": rec.get("decision"),
                "reasons": [reason_text(r) for r in rec.get("reasons") or []],
                "impact": impact, "impactBase": in_base, "power": (data.get("power") or {}).get("message"),
            })
        out_kpis.append({
            "metric": metric, "role": result.get("role"), "type": result.get("type"),
            "forest": charts.forest(f"Lift of {metric} with {int(100 * (1 - 0.05))}% confidence intervals",
                                    "one row per arm and estimator; the square is the estimate, the bar its CI",
                                    rows),
            "verdicts": verdicts, "exclusions": result.get("exclusions") or {},
            "checks": result.get("checks") or [],
        })
    out_kpis.sort(key=lambda k: k["role"] != "PRIMARY")
    return {"id": analysis.get("id"), "createdAt": wording.when(analysis.get("createdAt")), "kpis": out_kpis,
            "unitsAnalysed": analysis.get("unitsAnalysed"), "fraudFlagged": analysis.get("fraudFlagged"),
            "crossingUnits": analysis.get("crossingUnits"), "currency": money.currency,
            "baseCurrency": wording.Money.base().currency}


_analyses: OrderedDict[str, dict[str, Any]] = OrderedDict()  # published analyses never change
_ANALYSES_KEPT = 64
_analyses_lock = threading.Lock()


def analysis(who: Principal, analysis_id: str) -> dict[str, Any]:
    """A published analysis (immutable: a new one gets a new id), kept after its first read; the
    route's role check still applies to every reader."""
    path = f"/analyses/{analysis_id}"
    with _analyses_lock:
        kept = _analyses.get(analysis_id)
        if kept is not None:
            _analyses.move_to_end(analysis_id)
    if kept is not None and allowed(A, "GET", path, who):
        return kept
    got = call(A, "GET", path, who)
    with _analyses_lock:
        _analyses[analysis_id] = got
        while len(_analyses) > _ANALYSES_KEPT:
            _analyses.popitem(last=False)
    return got


def _latest_analysis(who: Principal, experiment_id: str) -> dict[str, Any] | None:
    listed = call(A, "GET", f"/experiments/{experiment_id}/analyses", who)["analyses"]
    return analysis(who, listed[-1]["id"]) if listed else None


def experiment_detail(who: Principal, experiment_id: str) -> dict[str, Any]:
    eid = experiment_id
    kept = _approved.get(eid) if allowed(L, "GET", "/exports", who) else None
    got = parallel(
        overview=lambda: call(E, "GET", f"/{eid}/overview", who),
        events=lambda: call(E, "GET", f"/{eid}/events", who)["events"],
        rollout=lambda: call(R, "GET", f"/{eid}/events", who)["events"],
        analysis=lambda: _latest_analysis(who, eid),
        **({} if kept else {"approved": lambda: approved_definition(who, eid)}),
    )
    if got["overview"] is None:  # unknown id or not allowed: the API's own refusal
        raise got["_raised"]["overview"]
    doc, health, series = got["overview"]["experiment"], got["overview"]["health"], got["overview"]["snapshots"]
    events = got["events"] or []
    analysis = got["analysis"]
    recorded, approved_hash = _approved_copy(events)
    if kept and kept[0] == doc["version"]:
        from_ledger = kept[1]
    else:
        from_ledger = got["approved"] if "approved" in got else approved_definition(who, eid)
        if "approved" not in got.get("_errors", {}):
            if len(_approved) > 5000:
                _approved.clear()
            _approved[eid] = (doc["version"], from_ledger)
    approved = recorded or from_ledger
    definition = doc["definition"]
    arms = [v["key"] for v in definition.get("variants") or []]
    verdicts = health.get("guardrails") or []
    held = None if not verdicts and doc["state"] != "KILLED" else (
        doc["state"] != "KILLED" and not any(v.get("status") == "BREACHED" for v in verdicts))
    started = parse_time(next((e.get("at") for e in events if e.get("action") == "START"), None))
    days = max((utc_now() - started).total_seconds() / 86400, 1 / 24) if started else None
    exposures = sum((health.get("exposures") or {}).values())
    units_per_day = exposures / days if days and exposures else None
    approvals = [{"uid": uid, "at": wording.when(a.get("at")), "comment": a.get("comment", "")}
                 for uid, a in (doc.get("approvals") or {}).items()]
    return {
        "exp": doc, "definition": definition, "hypothesis": definition.get("hypothesis") or {},
        "arms": arms, "health": health, "series": series, "events": events,
        "rollout": got["rollout"] or [], "analysis": analysis, "approvals": approvals,
        "diff": definition_diff(approved, definition), "approvedHash": approved_hash,
        "guardrailCharts": _guardrail_charts(series, events),
        "exposureChart": _exposure_chart(series, arms), "stageChart": stage_chart(got["rollout"] or []),
        "results": _results(analysis, doc, held, units_per_day), "guardrailsHeld": held,
        "actions": available_actions(who, eid, doc["state"]), "author": (events[0].get("actor") or {}).get("uid")
        if events else None, "unitsPerDay": units_per_day,
        "errors": {k: v for k, v in got.get("_errors", {}).items() if k != "overview"},
        "transitions": [e for e in events if e.get("action")],
    }
