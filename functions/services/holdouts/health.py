"""Cohort health from the sharded counters: no scan of units, cost independent of cohort size.

- Sample ratio: observed holdout size vs percentage x eligible units seen, chi-square (1 df);
  p < 0.001 means the hash, the eligibility rules or the logging is broken: CRITICAL.
- Contamination rate: contaminated holdout members / holdout size; goal < 1% (WARNING above,
  CRITICAL above 5%).
- Components spanning both sides and blocked crossings are reported; spanning components are
  a WARNING (analysis should exclude or model them).
"""

from __future__ import annotations

from functions.models.holdouts import HealthReport
from functions.services.holdouts import cohorts, counters
from functions.services.holdouts.health_rules import classify, sample_ratio


def report(cohort_id: str) -> HealthReport:
    cohort = cohorts.get(cohort_id)
    totals = counters.totals(cohort_id)
    observed = totals.get(counters.OBSERVED, 0)
    holdout = totals.get(counters.HOLDOUT, 0)
    contaminated = totals.get(counters.CONTAMINATED, 0)
    spanning = max(0, totals.get(counters.SPANNING, 0))
    share = cohort.percentage / 100.0
    srm = sample_ratio(observed, holdout, share)
    rate = contaminated / holdout if holdout else 0.0
    status, reasons = classify(srm, rate, spanning, cohort.frozen)
    return HealthReport(
        cohortId=cohort_id,
        status=status,
        reasons=reasons,
        observedUnits=observed,
        holdoutSize=holdout,
        expectedHoldoutSize=observed * share,
        srmChiSquare=srm.chi_square,
        srmPValue=srm.p_value,
        contaminatedUnits=contaminated,
        contaminationRate=rate,
        contaminatedByLinkType=counters.zero_fields(totals, counters.CONTAMINATED),
        crossings=totals.get(counters.CROSSINGS, 0),
        crossingsByLinkType=counters.zero_fields(totals, counters.CROSSINGS),
        blockedCrossings=totals.get(counters.BLOCKED, 0),
        componentsSpanningBoth=spanning,
    )
