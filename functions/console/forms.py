"""The "new experiment" form: plain fields in, an API request body out. Validation is the API's:
this module only reshapes text into the request and shows the API's coded messages by field."""

from __future__ import annotations

from typing import Any

from werkzeug.datastructures import MultiDict

from functions.adapters.auth import Principal
from functions.api import holdouts as holdouts_api
from functions.console.apicall import call
from functions.core.errors import AppError, Unprocessable

FIELDS = ("id", "name", "description", "statement", "expectedImpact", "risks", "successCriteria", "offerType",
          "variants", "holdoutCohortId", "primaryMetric", "primaryType", "primaryDirection", "primarySkewness",
          "secondary", "guardrails", "minimumDetectableEffect", "plannedDurationDays", "requiredApprovers")
DEFAULTS = {"variants": "control:50\ntreatment:50", "primaryType": "MEAN", "primaryDirection": "INCREASE",
            "minimumDetectableEffect": "0.05", "plannedDurationDays": "14", "offerType": "PRICE_CHANGE"}
OFFER_TYPES = ("PRICE_CHANGE", "PAYWALL", "PROMOTION", "BUNDLE", "TRIAL", "DISCOUNT")


def values(form: MultiDict) -> dict[str, str]:
    return {k: str(form.get(k, ""))[:5000] for k in FIELDS}


def choices(who: Principal) -> dict[str, Any]:
    try:
        cohorts = call(holdouts_api.router, "GET", "/cohorts", who)["cohorts"]
    except AppError:
        cohorts = []
    return {"cohorts": [c for c in cohorts if c.get("frozen")], "offerTypes": OFFER_TYPES}


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _number(text: str, field: str) -> float:
    try:
        return float(text)
    except ValueError as exc:
        raise Unprocessable(f"{field}: a number is expected", details={"errors": [
            {"field": field, "message": "a number is expected", "type": "float_parsing"}]}) from exc


def definition(v: dict[str, str]) -> dict[str, Any]:
    """Text fields to the CreateExperiment body. Lines: variants `key:weight`, secondary KPIs
    `metric[:TYPE[:DIRECTION]]`, guardrails `metric:max|min|relative:value[:KILL|PAUSE|ALERT]`."""
    variants = []
    for line in _lines(v["variants"]):
        key, _, weight = line.partition(":")
        variants.append({"key": key.strip(), "weight": _number(weight.strip() or "0", "variants")})
    kpis: list[dict[str, Any]] = []
    if v["primaryMetric"].strip():
        kpis.append({"metric": v["primaryMetric"].strip(), "role": "PRIMARY", "type": v["primaryType"] or "MEAN",
                     "direction": v["primaryDirection"] or "INCREASE"})
        if v["primarySkewness"].strip():  # the metric's shape from history (its profile), for the skewness gate
            kpis[0]["historicalSkewness"] = _number(v["primarySkewness"].strip(), "kpis")
    for line in _lines(v["secondary"]):
        parts = [p.strip() for p in line.split(":")]
        kpis.append({"metric": parts[0], "role": "SECONDARY", "type": (parts[1:2] or ["MEAN"])[0],
                     "direction": (parts[2:3] or ["INCREASE"])[0]})
    guardrails = []
    for line in _lines(v["guardrails"]):
        parts = [p.strip() for p in line.split(":")]
        if len(parts) < 3:
            raise Unprocessable("guardrails: use metric:max|min|relative:value[:action]", details={"errors": [
                {"field": "guardrails", "message": "use metric:max|min|relative:value[:action]", "type": "format"}]})
        metric, kind, value = parts[:3]
        g: dict[str, Any] = {"metric": metric, "action": (parts[3:4] or ["PAUSE"])[0]}
        number = _number(value, "guardrails")
        if kind == "max":
            g.update(absoluteMax=number, harmfulDirection="INCREASE")
        elif kind == "min":
            g.update(absoluteMin=number, harmfulDirection="DECREASE")
        else:
            g.update(maxRelativeDegradation=number)
        guardrails.append(g)
    body: dict[str, Any] = {
        "name": v["name"].strip(), "description": v["description"].strip(), "offerType": v["offerType"],
        "hypothesis": {"statement": v["statement"].strip(), "expectedImpact": v["expectedImpact"].strip(),
                       "risks": v["risks"].strip(), "successCriteria": v["successCriteria"].strip()},
        "variants": variants, "kpis": kpis, "guardrails": guardrails,
        "holdoutCohortId": v["holdoutCohortId"] or None,
        "minimumDetectableEffect": _number(v["minimumDetectableEffect"] or "0.05", "minimumDetectableEffect"),
        "plannedDurationDays": int(_number(v["plannedDurationDays"] or "14", "plannedDurationDays")),
        "requiredApprovers": [u.strip() for u in v["requiredApprovers"].split(",") if u.strip()],
    }
    if v["id"].strip():
        body["id"] = v["id"].strip()
    return body


def messages(err: AppError) -> list[dict[str, str]]:
    """The API's messages, one per field where it names one."""
    details = err.details if isinstance(err.details, dict) else {}
    found = [{"field": str(e.get("field", "")), "message": str(e.get("message", ""))}
             for e in details.get("errors") or [] if isinstance(e, dict)]
    return found or [{"field": "", "message": f"{err.message} ({err.code})"}]
