"""The long-term effect of everything shipped, measured against the global holdout.

Estimand: the difference in the mean per-unit total of one metric (summed after each unit's
first exposure, in the base currency for money) between units exposed to at least one shipped
variant and the members of the global holdout (frozen, never shown a tested change) who were
eligible for an experiment drawing on it; Welch's interval. Units on both sides (contaminated
holdout members) are left out and counted. A variant counts as shipped when its experiment's
latest analysis says SHIP for it and the experiment was neither killed nor cancelled.

The holdout is randomised, the shipped group is not a random draw of the rest (it is whoever the
shipped experiments targeted), so the figure is the programme's effect on the units it reached,
read against the holdout as their counterfactual: the comparison a board asks for, not a
per-experiment estimate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from functions.adapters.metric_store import store
from functions.adapters.metric_store.programme import PROGRAMME_SQL
from functions.adapters.repositories.analyses import AnalysisDoc
from functions.adapters.repositories.experiments import ExperimentDoc
from functions.core.errors import ErrorCode, NotFound
from functions.core.stats.inference import welch
from functions.core.stats.sufficient import MomentStats
from functions.models.holdouts import Cohort, Scope
from functions.services.experiments import repository, views
from functions.services.holdouts import cohorts

ESTIMAND = ("difference in mean per-unit {metric} (summed after first exposure) between units exposed to any "
            "shipped variant and the global holdout's members, contaminated members left out; Welch 95% CI")
STOPPED = ("KILLED", "CANCELLED")


def shipped_variants(docs: Sequence[ExperimentDoc], analyses: Mapping[str, AnalysisDoc]) -> list[str]:
    """"experimentId/variant" for every arm its experiment's latest analysis says to ship."""
    out = []
    for doc in docs:
        if doc.get("state") in STOPPED:
            continue
        analysis = analyses.get(doc["id"])
        rec = (analysis.get("recommendation") if analysis else None) or {}
        out += [f"{doc['id']}/{arm}" for arm, r in sorted(rec.items()) if (r or {}).get("decision") == "SHIP"]
    return out


def global_cohort(cohort_id: str | None = None) -> Cohort:
    """The named cohort, else the oldest frozen cohort of GLOBAL scope."""
    if cohort_id:
        return cohorts.get(cohort_id)
    found = sorted((c for c in cohorts.list_cohorts(frozen=True, limit=100) if c.scope == Scope.GLOBAL),
                   key=lambda c: c.createdAt)
    if not found:
        raise NotFound("no frozen global holdout cohort", code=ErrorCode.NO_GLOBAL_HOLDOUT)
    return found[0]


def holdout_effect(metric: str, cohort_id: str | None = None) -> dict[str, Any]:
    cohort = global_cohort(cohort_id)
    docs = repository.list_experiments(limit=500)
    started = [d["id"] for d in docs if d.get("startedAt") is not None]
    shipped = shipped_variants(docs, views.latest_analyses(started) if started else {})
    held = [d["id"] for d in docs if d.get("holdoutCohortId") == cohort.id]
    rows = {r["grp"]: r for r in store().query(PROGRAMME_SQL, {
        "experiments": sorted(set(held) | {s.split("/", 1)[0] for s in shipped}) or [""],
        "holdout_experiments": held or [""], "shipped": shipped or [""], "metric": metric})}

    def stats(group: str) -> MomentStats:
        r = rows.get(group) or {}
        return MomentStats(n=float(r.get("n") or 0), sum_x=float(r.get("sx") or 0), sum_x2=float(r.get("sxx") or 0))

    estimate = welch(stats("holdout"), stats("shipped"), estimand=ESTIMAND.format(metric=metric))
    return {"metric": metric, "cohortId": cohort.id, "cohortName": cohort.name, "shippedVariants": shipped,
            "holdoutExperiments": held, "contaminatedExcluded": int((rows.get("both") or {}).get("n") or 0),
            "estimate": estimate.to_dict()}
