"""Where each KPI's and guardrail's facts come from, and the check that they can be read.

A KPI or guardrail names a catalog metric, carries an inline definition, or (without either) is
the project's own KPI events `kpi.<metric>`. Creating or editing an experiment dry-runs every
definition's facts query in the metric store (strictly typed: `facts.check_sql`), so a broken
metric is a 422 then and never a failed sweep or analysis later. The good case costs one dry run
(all facts queries as one UNION ALL); only a refused batch is split to name the metric at fault.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from functions.adapters.metric_store import QueryRejected, schema, store
from functions.config import settings
from functions.core.errors import ErrorCode, Unavailable, Unprocessable
from functions.core.metrics import catalog
from functions.core.metrics.catalog import CatalogRef, MetricRef, RatioMetricDefinition
from functions.core.metrics.facts import MetricDefinition, check_sql, sql_string
from functions.models.experiments import ExperimentDefinition, Guardrail, Kpi, KpiType

log = logging.getLogger(__name__)


def kpi_rows(metric: str) -> str:
    """The de-duplicated `kpi_events` rows of one metric (an event delivered twice counts once)."""
    return f"SELECT * FROM {schema.deduped(schema.KPI_EVENTS, f'metric = {sql_string(metric)}')}"


def resolve(ref: MetricRef) -> MetricDefinition:
    return catalog.resolve(ref, ga4_dataset=settings().ga4_dataset, kpi_rows=kpi_rows)


def _default(metric: str) -> MetricDefinition:
    return resolve(CatalogRef(catalog=f"kpi.{metric}"))


def kpi_facts(kpi: Kpi | Mapping[str, Any]) -> dict[str, MetricDefinition]:
    """The definitions a KPI reads, by role: `value`, or `numerator` and `denominator` for a RATIO.
    Accepts the model or the stored document's dict."""
    kpi = kpi if isinstance(kpi, Kpi) else Kpi.model_validate(kpi)
    if kpi.type == KpiType.RATIO:
        assert kpi.numerator and kpi.denominator  # the model guarantees both for a RATIO
        if isinstance(kpi.definition, RatioMetricDefinition):
            return {"numerator": resolve(kpi.definition.numerator), "denominator": resolve(kpi.definition.denominator)}
        return {"numerator": _default(kpi.numerator), "denominator": _default(kpi.denominator)}
    if kpi.definition is None or isinstance(kpi.definition, RatioMetricDefinition):
        return {"value": _default(kpi.metric)}
    return {"value": resolve(kpi.definition)}


def guardrail_facts(guardrail: Guardrail | Mapping[str, Any]) -> MetricDefinition:
    guardrail = guardrail if isinstance(guardrail, Guardrail) else Guardrail.model_validate(guardrail)
    return resolve(guardrail.definition) if guardrail.definition is not None else _default(guardrail.metric)


def facts_of(definition: ExperimentDefinition) -> list[tuple[str, MetricDefinition]]:
    """(experiment metric, definition) for every fact source the experiment reads."""
    found = [(kpi.metric, d) for kpi in definition.kpis for d in kpi_facts(kpi).values()]
    return found + [(g.metric, guardrail_facts(g)) for g in definition.guardrails]


def check(definition: ExperimentDefinition) -> None:
    """422 METRIC_DEFINITION_INVALID naming the first metric the store refuses; 503 when the
    store cannot be reached. Reads nothing but the store's catalog; writes nothing."""
    queries: dict[str, str] = {}
    for metric, defn in facts_of(definition):
        queries.setdefault(check_sql(defn), metric)
    if not queries:
        return
    try:
        metric_store = store()
        if len(queries) > 1:
            try:
                metric_store.dry_run(" UNION ALL ".join(f"({sql})" for sql in queries))
                return
            except QueryRejected:
                pass  # find which one
        for sql, metric in queries.items():
            try:
                metric_store.dry_run(sql)
            except QueryRejected as exc:
                raise Unprocessable(f"metric {metric}: the metric store refuses its definition: {exc.message}",
                                    code=ErrorCode.METRIC_DEFINITION_INVALID,
                                    details={"metric": metric, "engine": metric_store.engine,
                                             "message": exc.message}) from None
    except Unprocessable:
        raise
    except Exception as exc:  # an unreachable or failing store is the store's problem, not the caller's
        log.warning("metric store unavailable while checking metric definitions", exc_info=True)
        raise Unavailable("the metric store cannot be reached to check the metric definitions; retry later",
                          code=ErrorCode.METRIC_STORE_UNAVAILABLE, details={"reason": type(exc).__name__}) from None
