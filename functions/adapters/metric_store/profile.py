"""A metric's history as one set of moments (BigQuery SQL, run by either store): every unit
with analytics consent exposed to any experiment (or to the experiments named), its total of one
metric over a window (aggregated and shaped as the metric's part says: sum, count or any, 0/1,
cap), zeros included. One row comes back: n, units with a non-zero total, and the shifted Σx,
Σx², Σx³ (shift: the mean), so the skewness survives large offsets."""

from __future__ import annotations

from functions.adapters.metric_store.queries import ANY, COUNT, SUM, MetricPart, shaped
from functions.adapters.metric_store.schema import EXPOSURES, deduped

_TOTAL = {SUM: "SUM(f.value)", COUNT: "COUNT(f.value)", ANY: "IF(COUNT(f.unit_id) > 0, 1, 0)"}


def profile_sql(part: MetricPart) -> str:
    """@since, @until: the window; @experiments: [] for every experiment; and the part's own
    parameters (a landed metric's name)."""
    x = shaped(f"COALESCE({_TOTAL[part.aggregation]}, 0)", part)
    return f"""
WITH population AS (
  SELECT unit_id FROM {deduped(EXPOSURES, "ARRAY_LENGTH(@experiments) = 0 OR experiment_id IN UNNEST(@experiments)")}
  GROUP BY unit_id HAVING LOGICAL_AND(analytics_consent)
),
facts AS (
  SELECT unit_id, value FROM ({part.facts}) WHERE event_time >= @since AND event_time < @until
),
totals AS (
  SELECT p.unit_id, CAST({x} AS FLOAT64) AS x
  FROM population p LEFT JOIN facts f ON f.unit_id = p.unit_id
  GROUP BY p.unit_id
),
shift AS (SELECT AVG(x) AS kx FROM totals)
SELECT COUNT(*) AS n, SUM(IF(x != 0, 1, 0)) AS nonzero, ANY_VALUE(kx) AS kx, SUM(x - kx) AS sx,
       SUM((x - kx) * (x - kx)) AS sxx, SUM((x - kx) * (x - kx) * (x - kx)) AS sxxx
FROM totals CROSS JOIN shift
"""
