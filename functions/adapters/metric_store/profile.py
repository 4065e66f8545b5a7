"""A metric's history as one set of moments (BigQuery SQL, run by either store): every unit
with analytics consent exposed to any experiment (or to the experiments named), its total of one
landed metric over a window, zeros included. One row comes back: n, units with a non-zero total,
and the shifted Σx, Σx², Σx³ (shift: the mean), so the skewness survives large offsets."""

from __future__ import annotations

from functions.adapters.metric_store.schema import EXPOSURES, KPI_EVENTS, deduped

# @metric: the landed metric; @since, @until: the window; @experiments: [] for every experiment
PROFILE_SQL = f"""
WITH population AS (
  SELECT unit_id FROM {deduped(EXPOSURES, "ARRAY_LENGTH(@experiments) = 0 OR experiment_id IN UNNEST(@experiments)")}
  GROUP BY unit_id HAVING LOGICAL_AND(analytics_consent)
),
totals AS (
  SELECT p.unit_id, COALESCE(SUM(k.value), 0.0) AS x
  FROM population p
  LEFT JOIN {deduped(KPI_EVENTS, "metric = @metric AND event_time >= @since AND event_time < @until")} k
    ON k.unit_id = p.unit_id
  GROUP BY p.unit_id
),
shift AS (SELECT AVG(x) AS kx FROM totals)
SELECT COUNT(*) AS n, SUM(IF(x != 0, 1, 0)) AS nonzero, ANY_VALUE(kx) AS kx, SUM(x - kx) AS sx,
       SUM((x - kx) * (x - kx)) AS sxx, SUM((x - kx) * (x - kx) * (x - kx)) AS sxxx
FROM totals CROSS JOIN shift
"""
