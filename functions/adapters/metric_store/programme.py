"""The programme-wide comparison's SQL: the global holdout's members against every unit exposed
to a shipped variant, one metric summed per unit after its first exposure (BigQuery SQL, run by
either store). Two rows come back (one per group: n, Σx, Σx²) and a count of units left out
because they sit on both sides."""

from __future__ import annotations

from functions.adapters.metric_store.schema import EXPOSURES, KPI_EVENTS, deduped

# @holdout_experiments: experiments drawing their holdout from the global cohort
# @shipped: "experimentId/variant" of every shipped variant
# @metric: the landed metric summed per unit
PROGRAMME_SQL = f"""
WITH seen AS (
  SELECT unit_id,
         MIN(IF(status = 'HOLDOUT' AND experiment_id IN UNNEST(@holdout_experiments), exposed_at, NULL)) AS held_at,
         MIN(IF(status = 'ASSIGNED' AND CONCAT(experiment_id, '/', IFNULL(variant, '')) IN UNNEST(@shipped),
                exposed_at, NULL)) AS shipped_at,
         LOGICAL_AND(analytics_consent) AS consent
  FROM {deduped(EXPOSURES, "experiment_id IN UNNEST(@experiments)")}
  GROUP BY unit_id
),
grouped AS (
  SELECT unit_id,
         CASE WHEN held_at IS NOT NULL AND shipped_at IS NOT NULL THEN 'both'
              WHEN held_at IS NOT NULL THEN 'holdout' ELSE 'shipped' END AS grp,
         COALESCE(shipped_at, held_at) AS since
  FROM seen WHERE consent AND (held_at IS NOT NULL OR shipped_at IS NOT NULL)
),
per_unit AS (
  SELECT g.unit_id, g.grp, COALESCE(SUM(IF(k.event_time >= g.since, k.value, 0.0)), 0.0) AS x
  FROM grouped g LEFT JOIN {deduped(KPI_EVENTS, "metric = @metric")} k ON k.unit_id = g.unit_id
  GROUP BY g.unit_id, g.grp
)
SELECT grp, COUNT(*) AS n, SUM(x) AS sx, SUM(x * x) AS sxx FROM per_unit GROUP BY grp
"""
