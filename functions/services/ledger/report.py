"""The audit report per experiment: history, approvals, guardrail actions, rollout path, final
analysis, pre-registration deviations and integrity, as JSON and as a board-ready HTML page."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from functions.adapters import ledger_store
from functions.core.clock import timestamp_text
from functions.core.ledger.preregistration import analysis_plan, plan_hash
from functions.core.wording import reason_text, verdict_sentence
from functions.services.analytics import analyses as analytics
from functions.services.experiments import repository
from functions.services.ledger.verification import verify_experiment
from functions.services.rollouts import store as rollouts


def _bodies(experiment_id: str) -> list[dict[str, Any]]:
    return [json.loads(d["canonical"]) for d in ledger_store.entries(ledger_store.experiment_chain(experiment_id))]


def _time(value: Any) -> Any:
    """Every time in the report in the ledger's one format (UTC, `Z`)."""
    return timestamp_text(value) if isinstance(value, datetime) else value


def _details(entry: Mapping[str, Any]) -> dict[str, Any]:
    return dict((entry.get("payload") or {}).get("details") or {})


def final_analysis(final: Mapping[str, Any] | None, kpis: Sequence[Mapping[str, Any]],
                   guardrails_held: bool) -> dict[str, Any] | None:
    """The final analysis in words and numbers: per KPI and arm, the primary estimate (lift and
    difference with their CIs, p-value, method), the decision and trust with their reasons, and
    the sentence a board reads. The console's report and this module's HTML both print this."""
    if not final:
        return None
    types = {k.get("metric"): k.get("type") for k in kpis}
    out = []
    for metric, result in (final.get("results") or {}).items():
        arms = []
        for arm, data in (result.get("arms") or {}).items():
            est, rec = data.get("primary") or {}, data.get("recommendation") or {}
            arms.append({"arm": arm, "method": est.get("method"), "lift": est.get("lift"),
                         "liftCi": est.get("liftCi"), "diff": est.get("diff"), "diffCi": est.get("diffCi"),
                         "pValue": est.get("pValue"), "decision": rec.get("decision"), "trust": rec.get("trust"),
                         "reasons": [reason_text(r) for r in rec.get("reasons") or [] if isinstance(r, Mapping)],
                         "sentence": verdict_sentence(arm, metric, types.get(metric), est, rec, guardrails_held)})
        out.append({"metric": metric, "role": result.get("role"), "type": result.get("type"), "arms": arms})
    out.sort(key=lambda k: k["role"] != "PRIMARY")
    return {"id": final.get("id"), "createdAt": _time(final.get("createdAt")),
            "recommendation": final.get("recommendation"), "guardrailsHeld": guardrails_held, "kpis": out}


def build(experiment_id: str) -> dict[str, Any]:
    doc = repository.load(experiment_id)
    entries = _bodies(experiment_id)
    timeline = [{"seq": e["seq"], "at": e["timestamp"], "action": e["action"], "actor": e["actor"],
                 "reason": (e.get("payload") or {}).get("reason", "")} for e in entries]
    started = [_details(e).get("contentHash") for e in entries if e["action"] == "EXPERIMENT_START"]
    guardrail_actions = [{"at": e["timestamp"], "action": e["action"], "actor": e["actor"],
                          "reason": (e.get("payload") or {}).get("reason", ""), **_details(e)}
                         for e in entries if _details(e).get("guardrail")]
    registered = [e["payload"]["planHash"] for e in entries if e["action"] == "PLAN_PREREGISTERED"]
    current_hash = plan_hash(analysis_plan(doc))
    deviations = [] if not registered or registered[-1] == current_hash else [
        {"registered": registered[-1], "current": current_hash, "message": "analysis plan changed after start"}]
    rollout = rollouts.list_events(experiment_id)
    analyses = analytics.list_for(experiment_id)  # oldest first
    final = analytics.get(analyses[-1]["id"]) if analyses else None  # the newest, with its result
    integrity = verify_experiment(experiment_id)
    # Rows from the first damaged entry on say so: a rewritten approver is shown, flagged, not vouched for.
    trusted_below = len(timeline) if integrity["ok"] else (integrity.get("firstBadIndex") or 0)
    for row in timeline:
        row["verified"] = isinstance(row["seq"], int) and row["seq"] < trusted_below
    # What each approval covered: the content hash of everything that runs, and the approver's comment.
    approvals = [{**row, "contentHash": _details(e).get("contentHash"), "comment": _details(e).get("comment")}
                 for row, e in zip(timeline, entries, strict=True)
                 if row["action"] in ("EXPERIMENT_APPROVE", "EXPERIMENT_APPROVAL_RECORDED", "EXPERIMENT_REJECT")]
    return {
        "experimentId": experiment_id, "name": doc.get("name"), "state": doc.get("state"),
        "hypothesis": doc.get("hypothesis"), "author": doc.get("author"), "timeline": timeline,
        "approvals": approvals, "guardrailActions": guardrail_actions,
        "approvedContentHash": started[-1] if started else None,
        "rolloutPath": sorted(({"at": _time(r.get("at")), "from": r.get("fromStage"), "to": r.get("toStage"),
                                "kind": r.get("kind"), "actor": r.get("actor"), "reason": r.get("reason")}
                               for r in rollout), key=lambda r: str(r["at"])),
        "finalAnalysis": final_analysis(analytics.to_view(final) if final else None, doc.get("kpis") or [],
                                        guardrails_held=not guardrail_actions),
        "preRegistration": {"planHash": registered[-1] if registered else None, "deviations": deviations},
        "integrity": integrity,
    }


def _cell(value: Any) -> str:
    """A value as a person reads it: an actor as "uid (role)", nothing for a missing value."""
    if isinstance(value, Mapping) and "uid" in value:
        return f"{value.get('uid')} ({value.get('role')})" if value.get("role") else str(value.get("uid"))
    if value is None:
        return ""
    return str(value)


def _rows(items: list[dict[str, Any]], keys: list[str]) -> str:
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(i.get(k)))}</td>" for k in keys) + "</tr>"
                   for i in items)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _hypothesis(hypothesis: Any) -> str:
    if not isinstance(hypothesis, Mapping):
        return f"<p>{html.escape(_cell(hypothesis))}</p>"
    labels = {"statement": "Hypothesis", "expectedImpact": "Expected impact", "risks": "Risks",
              "successCriteria": "Success criteria"}
    return "<dl>" + "".join(f"<dt>{html.escape(label)}</dt><dd>{html.escape(_cell(hypothesis.get(key)))}</dd>"
                            for key, label in labels.items() if hypothesis.get(key)) + "</dl>"


def _analysis(final: Mapping[str, Any]) -> str:
    """The final analysis in words and numbers (`final_analysis`): per KPI and arm, the sentence,
    then the trust level and its reasons."""
    if not final:
        return "<p>No analysis was published.</p>"
    items = []
    for kpi in final.get("kpis") or []:
        for arm in kpi["arms"]:
            reasons = "; ".join(arm["reasons"]) or "no data-quality concerns"
            items.append(f"<li><b>{html.escape(arm['sentence'])}</b> (trust {html.escape(str(arm['trust']))}: "
                         f"{html.escape(reasons)})</li>")
    return (f"<p>Analysis {html.escape(str(final.get('id')))}, published {html.escape(str(final.get('createdAt')))}"
            f"</p><ul>{''.join(items)}</ul>")


def render_html(report: dict[str, Any]) -> str:
    integrity = report["integrity"]
    status = "VERIFIED" if integrity["ok"] else f"DAMAGED: {integrity['damage']} at {integrity['firstBadIndex']}"
    cp = integrity.get("checkpoint") or {}
    final = report.get("finalAnalysis") or {}
    deviations = report["preRegistration"]["deviations"]
    esc = html.escape
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Audit report: {esc(str(report['name']))}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}}table{{border-collapse:collapse;width:100%}}
td,th{{border:1px solid #ccc;padding:.3rem .5rem;text-align:left}}.ok{{color:#064}}.bad{{color:#a00}}
.kpi{{display:inline-block;margin-right:2rem;font-size:1.2rem}}</style></head><body>
<h1>Audit report: {esc(str(report['name']))}</h1>
<p><span class="kpi">State: <b>{esc(str(report['state']))}</b></span>
<span class="kpi">Integrity: <b class="{'ok' if integrity['ok'] else 'bad'}">{esc(status)}</b></span>
<span class="kpi">Entries: <b>{integrity['length']}</b></span></p>
<p>Verified against checkpoint: tree size {esc(str(cp.get('treeSize')))}, root {esc(str(cp.get('rootHash')))},
signed {esc(str(cp.get('at')))} (key {esc(str(cp.get('keyId')))}).</p>
<h2>Hypothesis</h2>{_hypothesis(report.get('hypothesis'))}
<h2>Pre-registration</h2><p>Plan hash {esc(str(report['preRegistration']['planHash']))};
{'<b class="bad">deviations: ' + esc(json.dumps(deviations)) + '</b>' if deviations else 'no deviations.'}</p>
<h2>Approvals</h2><p>Content hash approved and started: <code>{esc(str(report.get('approvedContentHash')))}</code></p>
{_rows(report['approvals'], ['at', 'action', 'actor', 'comment', 'contentHash', 'verified'])}
<h2>Guardrail actions</h2>{_rows(report['guardrailActions'], ['at', 'action', 'guardrail', 'arm', 'observed',
                                                               'bound', 'limit'])}
<h2>Rollout path</h2>{_rows(report['rolloutPath'], ['at', 'kind', 'from', 'to', 'actor', 'reason'])}
<h2>Final analysis</h2>{_analysis(final)}
<h2>Timeline</h2>{_rows(report['timeline'], ['seq', 'at', 'action', 'actor', 'reason', 'verified'])}
</body></html>"""
