"""Ready metric definitions: the Firebase / GA4 BigQuery export and the project's own KPI events.

The GA4 export writes one table per day, `<dataset>.events_YYYYMMDD`, read together as the
wildcard table `<dataset>.events_*`. A unit is the signed-in `user_id`, else the app instance's
`user_pseudo_id` (so the unit ids the app sends to `assign` must be the same); a time is
`event_timestamp` (microseconds, UTC). Money is the export's USD-converted field, so units paying
in different currencies add up. The dataset is a setting (`GA4_DATASET`), passed in here because
the core reads no configuration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import Discriminator, Field, Tag, model_validator
from pydantic_core import PydanticCustomError

from functions.core.metrics.facts import Aggregation, DefinitionModel, MetricDefinition, MetricName, sql_string

GA4_UNIT = "COALESCE(user_id, user_pseudo_id)"
GA4_TIME = "TIMESTAMP_MICROS(event_timestamp)"
# Events the app or the OS logs without the user doing anything: they do not show a user came back.
GA4_PASSIVE_EVENTS = ("app_remove", "app_clear_data", "app_update", "os_update", "notification_receive",
                      "notification_dismiss")
KPI_TABLE = "kpi_events"


def _ga4_metric(dataset: str, name: str, where: str, value: str = "1", aggregation: Aggregation = Aggregation.SUM,
               delay_hours: float = 0, window_hours: float | None = None) -> MetricDefinition:
    return MetricDefinition(name=name, source=f"{dataset}.events_*", unitColumn=GA4_UNIT, timestampColumn=GA4_TIME,
                            valueExpression=value, where=where, aggregation=aggregation, delayHours=delay_hours,
                            windowHours=window_hours)


def _ga4(dataset: str) -> dict[str, MetricDefinition]:
    passive = ", ".join(sql_string(name) for name in GA4_PASSIVE_EVENTS)
    return {
        "ga4.purchase_revenue": _ga4_metric(dataset, "ga4.purchase_revenue", "event_name = 'purchase'",
                                            value="ecommerce.purchase_revenue_in_usd"),
        "ga4.refunds": _ga4_metric(dataset, "ga4.refunds", "event_name = 'refund'",
                                   value="ecommerce.refund_value_in_usd"),
        "ga4.conversion": _ga4_metric(dataset, "ga4.conversion", "event_name = 'purchase'",
                                      aggregation=Aggregation.ANY),
        # day 7 after first exposure: any user-driven event in [exposure + 168 h, exposure + 192 h)
        "ga4.retention_d7": _ga4_metric(dataset, "ga4.retention_d7", f"event_name NOT IN ({passive})",
                                        aggregation=Aggregation.ANY, delay_hours=168, window_hours=24),
    }


GA4_METRICS = tuple(_ga4("analytics_demo"))


def kpi_metric(metric: str, rows_sql: str | None = None) -> MetricDefinition:
    """The project's own `kpi_events` rows of one metric, summed per unit. `rows_sql` is the
    table's de-duplicated rows (the store's `deduped()`); without it the raw table is read."""
    return MetricDefinition(name=f"kpi.{metric}", source=None if rows_sql else KPI_TABLE, sql=rows_sql,
                            unitColumn="unit_id", timestampColumn="event_time", valueExpression="value",
                            where=f"metric = {sql_string(metric)}", aggregation=Aggregation.SUM)


class CatalogRef(DefinitionModel):
    """A ready definition by name: `{"catalog": "ga4.purchase_revenue"}` or `{"catalog": "kpi.<metric>"}`."""

    catalog: str = Field(pattern=r"^(ga4\.[a-z0-9_]{1,64}|kpi\.[A-Za-z0-9._:@+=-]{1,128})$")

    @model_validator(mode="after")
    def _known(self) -> CatalogRef:
        if self.catalog.startswith("ga4.") and self.catalog not in GA4_METRICS:
            raise PydanticCustomError("unknown_catalog_metric", "unknown catalog metric {name}; known: {known}",
                                      {"name": self.catalog, "known": ", ".join((*GA4_METRICS, "kpi.<metric>"))})
        return self


def _kind(value: Any) -> str:
    """Which shape a reference has, so a mistake is reported against that shape only."""
    if isinstance(value, dict):
        if "catalog" in value:
            return "catalog"
        return "ratio" if "numerator" in value or "denominator" in value else "inline"
    if isinstance(value, CatalogRef):
        return "catalog"
    return "inline" if isinstance(value, MetricDefinition) else "ratio"


MetricRef = Annotated[Annotated[MetricDefinition, Tag("inline")] | Annotated[CatalogRef, Tag("catalog")],
                      Discriminator(_kind)]


class RatioMetricDefinition(DefinitionModel):
    """A ratio of two metrics' per-unit totals (analysed with the delta method)."""

    name: MetricName
    numerator: MetricRef
    denominator: MetricRef


# what a KPI's `definition` may be: an inline definition, a catalog name, or a ratio of two
KpiMetricRef = Annotated[Annotated[MetricDefinition, Tag("inline")] | Annotated[CatalogRef, Tag("catalog")]
                         | Annotated[RatioMetricDefinition, Tag("ratio")], Discriminator(_kind)]


def resolve(ref: MetricRef, *, ga4_dataset: str, kpi_rows: Callable[[str], str] | None = None) -> MetricDefinition:
    """The definition a reference stands for (an inline definition is itself)."""
    if isinstance(ref, MetricDefinition):
        return ref
    kind, _, name = ref.catalog.partition(".")
    if kind == "kpi":
        return kpi_metric(name, kpi_rows(name) if kpi_rows else None)
    return _ga4(ga4_dataset)[ref.catalog]
