"""The SQL the sweep and analyses run in the metric store (BigQuery Standard SQL).

Everything unit-level happens here: the exposure join, attribution after first exposure (with a
metric's delay and window), per-unit totals, the bias-correction filters (consent, restricted
regions, fraud, bots), the exact percentile cap and the sufficient statistics. One query per KPI
returns a few rows of counts and sums in a long format (`kind`, `arm`, `name`, `region`, numbers),
so what crosses into the function does not grow with the number of units.

Inputs that are not column values are query parameters; the only text spliced in is a metric's
facts query (`MetricPart.facts`), built from a validated definition or the landing table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from functions.adapters.metric_store.schema import EXPOSURES, FRAUD_FLAGS, KPI_EVENTS, deduped

SUM, COUNT, ANY = "SUM", "COUNT", "ANY"
LATE_AFTER_SECONDS = 6 * 3600  # an event landing later than this after it happened is late data


@dataclass(frozen=True)
class MetricPart:
    """One per-unit value: facts (unit_id, event_time, value, pre_value, event_id), how they
    aggregate per unit, and which facts count (delay/window after first exposure; a covariate
    from the facts' own pre_value, or the same aggregation over `pre_days` before exposure)."""

    facts: str
    aggregation: str = SUM
    landed: str | None = None  # the query parameter naming a landed metric: read from `attributed`
    binary: bool = False  # 0/1 per unit (a conversion): any positive total is 1
    cap: float | None = None  # per-unit cap on the total
    delay_hours: float = 0.0
    window_hours: float | None = None
    pre_days: float | None = None


def landed(param: str, binary: bool = False, cap: float | None = None) -> MetricPart:
    """The project's own landed KPI events of the metric named by query parameter `param`, read
    from the experiment's attributed events (one scan of the landing table per query)."""
    return MetricPart(kpi_facts(param), binary=binary, cap=cap, landed=param)


def kpi_facts(param: str) -> str:
    """The project's own landed KPI events of the metric named by query parameter `param`."""
    return (f"SELECT unit_id, event_time, value, pre_value, event_id "
            f"FROM {deduped(KPI_EVENTS, f'metric = @{param}')}")


def _exposed(population: bool = False) -> str:
    """Units exposed to the experiment with exactly one arm (a unit decided into two arms is left
    out, as the exposure log flags it), their first exposure and analytics consent: `units` in the
    analysed arms without the units left out; with `population`, also `everyone` in the arms whose
    population facts are wanted (parameter population_arms, nobody left out).

    Each distinct decision (status, variant) gets a number first (`decisions`, a few rows), so the
    per-unit aggregate holds two integers where it held five strings: a unit has one decision when
    its smallest and largest numbers agree. String MIN/MAX states cost about 60 MB per million
    units on the embedded engine; that aggregate was half of the analysis's peak memory."""
    analysed = "d.arm IS NOT NULL AND d.status IN ('ASSIGNED', 'HOLDOUT')"
    one_arm = f"""
  SELECT x.unit_id, d.arm, x.exposed_at, x.consent
  FROM exposed x JOIN decisions d ON d.decision = x.decision
  WHERE x.decision = x.last_decision AND {analysed}"""
    units = (f"""
everyone AS ({one_arm} AND d.arm IN UNNEST(@population_arms)
),
units AS (
  SELECT unit_id, arm, exposed_at, consent FROM everyone
  WHERE arm IN UNNEST(@arms) AND unit_id NOT IN UNNEST(@left_out)
)""" if population else f"""
units AS ({one_arm} AND d.arm IN UNNEST(@arms) AND x.unit_id NOT IN UNNEST(@left_out)
)""")
    return f"""
decisions AS (
  SELECT status, variant_key, IF(status = 'HOLDOUT', 'holdout', NULLIF(variant_key, '')) AS arm,
         ROW_NUMBER() OVER (ORDER BY status, variant_key) AS decision
  FROM (SELECT DISTINCT status, IFNULL(variant, '') AS variant_key FROM {EXPOSURES}
        WHERE experiment_id = @experiment_id)
),
exposed AS (
  SELECT e.unit_id, MIN(e.exposed_at) AS exposed_at, LOGICAL_AND(e.analytics_consent) AS consent,
         MIN(d.decision) AS decision, MAX(d.decision) AS last_decision
  FROM {deduped(EXPOSURES, 'experiment_id = @experiment_id')} e
  JOIN decisions d ON d.status = e.status AND d.variant_key = IFNULL(e.variant, '')
  GROUP BY e.unit_id
),{units}"""


def order_key(time: str, event_id: str) -> str:
    """A string that sorts as (time, event id): an earliest- or latest-row pick becomes one
    MIN_BY/MAX_BY, which streams, where an ordered ARRAY_AGG buffers and sorts every group.
    Microseconds since 0001-01-01 (BigQuery's earliest timestamp) are never negative, and 18
    digits hold them up to 9999-12-31."""
    return f"CONCAT(LPAD(CAST(UNIX_MICROS({time}) + {_MICROS_BEFORE_1970} AS STRING), 18, '0'), IFNULL({event_id}, ''))"


_MICROS_BEFORE_1970 = 62135596800000000


def _pick(value: str, key: str, last: bool = False, when: str = "TRUE") -> str:
    """The non-NULL `value` at the smallest (or largest) `key` among the rows where `when`. A row
    that does not qualify has neither value nor key, so no engine can return its value."""
    fits = f"({when}) AND {value} IS NOT NULL"
    return f"{'MAX_BY' if last else 'MIN_BY'}(IF({fits}, {value}, NULL), IF({fits}, {key}, NULL))"


def _activity(landed: Sequence[tuple[int, MetricPart]] = (), signals: bool = True, source: str = "units") -> str:
    """The experiment's landed events after each unit's first exposure (each event once), and the
    bot and data-quality signals per unit they give: event count, events sharing a timestamp,
    late events, first and last event, and the region of the latest event that names one (by
    time, then event id). A landed metric's per-unit totals (`landed` parts, by index) come out
    of the same pass, as columns `x{i}`, `pre{i}` and `facts{i}`. Without `signals`, only the
    counts, late events and the last event (what the population facts need). `source`: the CTE
    of the units whose events are read.

    With signals, events are first summed per unit and instant, then per unit: the instants
    counted give the shared timestamps without a DISTINCT, and within one instant the event id
    alone orders the earliest/latest picks, so both stages stream."""
    late = f"a.received_at > TIMESTAMP_ADD(a.event_time, INTERVAL {LATE_AFTER_SECONDS} SECOND)"
    attributed = f"""
attributed AS (
  SELECT u.unit_id, k.event_id, k.metric, k.value, k.pre_value, k.region, k.event_time, k.received_at
  FROM {source} u JOIN {deduped(KPI_EVENTS, 'metric IN UNNEST(@activity_metrics)')} k
    ON k.unit_id = u.unit_id AND k.event_time >= u.exposed_at
),"""
    if not signals:
        return attributed + f"""
activity AS (
  SELECT a.unit_id, COUNT(*) AS events, COUNTIF({late}) AS late, MAX(a.event_time) AS last_seen
  FROM attributed a
  GROUP BY a.unit_id
)"""
    inner = "".join(f""",
         {_IN_INSTANT[p.aggregation].format(m=p.landed)} AS x{i},
         {_pick("a.pre_value", "a.event_id", when=f"a.metric = @{p.landed}")} AS pre{i},
         COUNTIF(a.metric = @{p.landed}) AS facts{i}""" for i, p in landed)
    outer = "".join(f""",
         CAST({_PER_UNIT[p.aggregation].format(i=i)} AS FLOAT64) AS x{i},
         {_pick(f"pre{i}", "event_time")} AS pre{i}, SUM(facts{i}) AS facts{i}""" for i, p in landed)
    return attributed + f"""
instants AS (
  SELECT a.unit_id, a.event_time, COUNT(*) AS events, COUNTIF({late}) AS late,
         {_pick("a.region", "a.event_id", last=True)} AS region{inner}
  FROM attributed a
  GROUP BY a.unit_id, a.event_time
),
activity AS (
  SELECT unit_id, SUM(events) AS events, SUM(events) - COUNT(*) AS same_ts, SUM(late) AS late,
         MIN(event_time) AS first_seen, MAX(event_time) AS last_seen,
         {_pick("region", "event_time", last=True)} AS region{outer}
  FROM instants
  GROUP BY unit_id
)"""


# a landed metric's total: per instant, then per unit ({m}: its parameter, {i}: its part)
_IN_INSTANT = {SUM: "SUM(IF(a.metric = @{m}, a.value, 0))", COUNT: "COUNTIF(a.metric = @{m} AND a.value IS NOT NULL)",
               ANY: "COUNTIF(a.metric = @{m})"}
_PER_UNIT = {SUM: "SUM(x{i})", COUNT: "SUM(x{i})", ANY: "IF(SUM(x{i}) > 0, 1, 0)"}


def _folded(part: MetricPart) -> bool:
    """A landed metric without its own attribution window is summed in the activity pass."""
    return part.landed is not None and part.delay_hours == 0 and part.window_hours is None and part.pre_days is None


def _part(i: int, part: MetricPart) -> str:
    start = f"TIMESTAMP_ADD(u.exposed_at, INTERVAL {int(part.delay_hours * 3600)} SECOND)"
    inside = f"f.event_time >= {start}"
    if part.window_hours is not None:
        inside += f" AND f.event_time < TIMESTAMP_ADD({start}, INTERVAL {int(part.window_hours * 3600)} SECOND)"
    value = {SUM: f"SUM(IF({inside}, f.value, 0))", COUNT: f"COUNTIF({inside} AND f.value IS NOT NULL)",
             ANY: f"IF(COUNTIF({inside}) > 0, 1, 0)"}[part.aggregation]
    if part.pre_days is None:
        pre = _pick("f.pre_value", order_key("f.event_time", "f.event_id"), when=inside)
        since = "u.exposed_at"
    else:
        before = "f.event_time < u.exposed_at"
        pre = {SUM: f"SUM(IF({before}, f.value, 0))", COUNT: f"COUNTIF({before} AND f.value IS NOT NULL)",
               ANY: f"IF(COUNTIF({before}) > 0, 1, 0)"}[part.aggregation]
        since = f"TIMESTAMP_SUB(u.exposed_at, INTERVAL {int(part.pre_days * 86400)} SECOND)"
    return f"""
part{i} AS (
  SELECT u.unit_id, CAST({value} AS FLOAT64) AS x, CAST({pre} AS FLOAT64) AS pre, COUNTIF({inside}) AS facts
  FROM units u JOIN ({part.facts}) f ON f.unit_id = u.unit_id AND f.event_time >= {since}
  GROUP BY u.unit_id
)"""


def _column(i: int, part: MetricPart, name: str) -> str:
    """Part `i`'s per-unit column `name` (x, pre or facts): from the activity pass or its own CTE."""
    return f"a.{name}{i}" if _folded(part) else f"p{i}.{name}"


def _shaped(i: int, part: MetricPart) -> str:
    """The per-unit value after the metric's own shaping: 0/1 for a conversion, then its cap."""
    return shaped(f"COALESCE({_column(i, part, 'x')}, 0)", part)


def shaped(x: str, part: MetricPart) -> str:
    """A per-unit total `x` shaped as the metric says: 0/1 for a conversion, then its cap."""
    if part.binary:
        x = f"IF({x} > 0, 1.0, 0.0)"
    if part.cap is not None:
        x = f"LEAST({x}, CAST({float(part.cap)!r} AS FLOAT64))"
    return x


def exact_quantile(values: str, p: str) -> str:
    """The exact `p` quantile of a query's column `v` (see `exact_quantile_counted`)."""
    return exact_quantile_counted(f"SELECT v, COUNT(*) AS c FROM ({values}) GROUP BY v", p)


def exact_quantile_counted(counted: str, p: str) -> str:
    """The exact `p` quantile of values given as distinct values `v` with their counts `c`
    (one row per value), interpolated as numpy's default (linear):
    h = (n - 1) p, x[floor h] + (h - floor h) (x[floor h + 1] - x[floor h]), where x is sorted.
    The values are counted first and only the distinct ones are ranked (activity counts and zero
    amounts repeat a lot), so it costs one hash aggregate and a small sort on any engine (an
    analytic PERCENTILE_CONT OVER () is computed per row on DuckDB, and BigQuery has no exact
    aggregate percentile); NULL over no rows."""
    return f"""(
    SELECT CAST(lo_v + (h - lo) * (hi_v - lo_v) AS FLOAT64) FROM (
      SELECT MAX(IF(lo >= start AND lo < stop, v, NULL)) AS lo_v, MAX(IF(hi >= start AND hi < stop, v, NULL)) AS hi_v,
             ANY_VALUE(h) AS h, ANY_VALUE(lo) AS lo
      FROM (
        SELECT v, stop - c AS start, stop, (n - 1) * {p} AS h, FLOOR((n - 1) * {p}) AS lo,
               LEAST(FLOOR((n - 1) * {p}) + 1, n - 1) AS hi
        FROM (
          SELECT v, c, SUM(c) OVER (ORDER BY v ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS stop,
                 SUM(c) OVER () AS n
          FROM ({counted})))))"""


STATS_COLUMNS = "n, sx, sxx, sp, spp, sxp, kx, kp, sxxx"


# The per-unit rows are read three times: for the cap, for each arm's shifts, and once for
# everything else, grouped by (arm, region, filter, above the cap); every count and shifted sum
# then adds up from those few groups. They were read eleven times, once per kind of row, and under
# the embedded engine's memory bound each read is a scan of a spilled table.
_SHIFTED = {"": ("u.x", "kx", "u.pre", "kp"), "c": ("LEAST(u.x, (SELECT value FROM cap))", "kc", "u.pre", "kp"),
            "f": ("u.x", "kxf", "u.pre", "kpf")}  # prefix -> value, its shift, covariate, its shift


def _column_of(prefix: str, stat: str) -> str:
    """The group column holding `stat` for `prefix`: the capped statistics share the units and the
    covariate (and its shift) of the uncapped ones, so they share those columns."""
    return stat if prefix == "c" and stat in ("n", "sp", "spp") else f"{prefix}{stat}"


def _unit_groups(crossing: bool) -> str:
    shifts = """
  SELECT arm, AVG(IF(removed_by IS NULL, x, NULL)) AS kx, AVG(IF(removed_by IS NULL, pre, NULL)) AS kp,
         AVG(IF(removed_by IS NULL, LEAST(x, (SELECT value FROM cap)), NULL)) AS kc,
         AVG(IF(removed_by IS NULL AND NOT crosses, x, NULL)) AS kxf,
         AVG(IF(removed_by IS NULL AND NOT crosses, pre, NULL)) AS kpf
  FROM unit_rows GROUP BY arm"""
    sums = []
    for prefix, (value, kv, cov, kc) in _SHIFTED.items():
        if prefix == "f" and not crossing:
            continue
        keep = "NOT u.crosses" if prefix == "f" else None  # the clean statistics leave linked units out
        d, e = f"({value} - s.{kv})", f"({cov} - s.{kc})"
        terms = {"n": f"COUNTIF({keep})" if keep else "COUNT(*)"} | {
            stat: f"SUM(IF({keep}, {t}, 0))" if keep else f"SUM({t})"
            for stat, t in (("sx", d), ("sxx", f"{d} * {d}"), ("sp", e), ("spp", f"{e} * {e}"),
                            ("sxp", f"{d} * {e}"), ("sxxx", f"{d} * {d} * {d}"))}
        sums += [f"{t} AS {prefix}{stat}" for stat, t in terms.items() if _column_of(prefix, stat) == prefix + stat]
    return f"""
shifts AS ({shifts}
),
unit_groups AS (
  SELECT u.arm, u.region, u.removed_by, u.removed_by IS NULL AND u.x > (SELECT value FROM cap) AS above,
         {", ".join(sums)}
  FROM unit_rows u JOIN shifts s ON s.arm = u.arm
  GROUP BY u.arm, u.region, u.removed_by, above
)"""


def _sums(kind: str, prefix: str, where: str) -> str:
    """Sufficient statistics per arm from the groups: the shifted sums add exactly, and each arm
    keeps its one shift."""
    _, kv, _, kc = _SHIFTED[prefix]
    return f"""
  SELECT '{kind}' AS kind, g.arm, CAST(NULL AS STRING) AS name, CAST(NULL AS STRING) AS region,
         {", ".join(f"SUM(g.{_column_of(prefix, c)}) AS {c}" for c in ("n", "sx", "sxx", "sp", "spp", "sxp"))},
         ANY_VALUE(s.{kv}) AS kx, ANY_VALUE(s.{kc}) AS kp, SUM(g.{_column_of(prefix, "sxxx")}) AS sxxx
  FROM unit_groups g JOIN shifts s ON s.arm = g.arm WHERE {where}
  GROUP BY g.arm HAVING SUM(g.{_column_of(prefix, "n")}) > 0"""


def _counts(kind: str, name: str, where: str) -> str:
    return f"""
  SELECT '{kind}' AS kind, arm, {name} AS name, region, SUM(n) AS n, {_NULLS}
  FROM unit_groups WHERE {where} GROUP BY arm, name, region"""


_NULLS = ", ".join(f"CAST(NULL AS FLOAT64) AS {c}" for c in STATS_COLUMNS.split(", ")[1:])


def analysis(value: MetricPart, second: MetricPart | None = None, *, ratio: bool = False,
             percentile_cap: bool = False, crossing: bool = False, population: bool = False) -> str:
    """One KPI's analysis inputs. Parameters: experiment_id, arms, left_out (units not analysed,
    e.g. contaminated holdout members), activity_metrics, restricted_regions, max_events_per_day,
    mad_threshold, max_identical_share, has_max_value and max_value, percentile, has_fixed_cap and
    fixed_cap, crossing_units (no parameter is NULL: BigQuery needs a type for every value).
    `second` is the denominator (ratio) or nothing; without `ratio` a MEAN
    KPI's covariate is the first part's pre-period value.

    Rows: kind 'filter' (arm, filter name, region, units removed), 'scope' (arm, region, units),
    'cap' (the cap in kx), 'capped' (arm, region, kept units above the cap), 'kept' (arm, region,
    kept units), and sufficient statistics of kind 'stats', 'capped_stats', 'clean_stats'. With
    `population`, the same scan also gives the population facts (rows of kind 'population', as
    `population()` returns them) of every unit in population_arms: one pass over the raw rows
    serves both."""
    parts = [value] + ([second] if second is not None else [])
    folded = [(i, p) for i, p in enumerate(parts) if _folded(p)]
    ctes = [_exposed(population), _activity(folded, source="everyone" if population else "units"),
            *(_part(i, p) for i, p in enumerate(parts) if not _folded(p))]
    joins = " ".join(f"LEFT JOIN part{i} p{i} ON p{i}.unit_id = u.unit_id"
                     for i, p in enumerate(parts) if not _folded(p))
    x = _shaped(0, value)
    covariate = _shaped(1, second) if ratio and second is not None else f"COALESCE({_column(0, value, 'pre')}, 0)"
    # with the population, one row per unit of `everyone` (its facts come from the same join);
    # `analysed` marks the units of the analysis itself
    source, analysed = (("everyone", "u.arm IN UNNEST(@arms) AND u.unit_id NOT IN UNNEST(@left_out)")
                        if population else ("units", "TRUE"))
    ctes.append(f"""{_FLAGS},
base AS (
  SELECT u.arm, u.consent, COALESCE(a.region, 'unknown') AS region, COALESCE(a.events, 0) AS events,
         COALESCE(a.same_ts, 0) AS same_ts, fl.unit_id IS NOT NULL AS fraud,
         GREATEST(CAST(CEIL(IFNULL(UNIX_MICROS(a.last_seen) - UNIX_MICROS(a.first_seen), 0) / 86400e6) AS FLOAT64),
                  1.0) AS active_days,
         {x} AS x, {covariate} AS pre, u.unit_id IN UNNEST(@crossing_units) AS crosses, {analysed} AS analysed,
         u.exposed_at, a.unit_id IS NOT NULL AS active, a.late, a.last_seen
  FROM {source} u LEFT JOIN activity a ON a.unit_id = u.unit_id LEFT JOIN flags fl ON fl.unit_id = u.unit_id {joins}
),
activity_counts AS (SELECT events AS v, COUNT(*) AS c FROM base WHERE consent AND analysed GROUP BY events),
baseline AS (SELECT {exact_quantile_counted("SELECT v, c FROM activity_counts", "0.5")} AS med),
spread AS (
  SELECT ANY_VALUE(med) AS med,
         {exact_quantile_counted("SELECT ABS(v - (SELECT med FROM baseline)) AS v, SUM(c) AS c FROM activity_counts "
                                 "GROUP BY ABS(v - (SELECT med FROM baseline))", "0.5")} AS mad
  FROM baseline
),
unit_rows AS (
  SELECT b.arm, b.region, b.x, b.pre, b.crosses, CASE
      WHEN NOT b.consent THEN 'consent'
      WHEN b.region IN UNNEST(@restricted_regions) THEN 'region'
      WHEN b.fraud THEN 'fraud'
      WHEN b.events / GREATEST(b.active_days, 1.0) > @max_events_per_day
        OR (IFNULL(s.mad, 0) > 0 AND 0.6745 * (b.events - s.med) / s.mad > @mad_threshold)
        OR IF(b.events >= 10, b.same_ts / GREATEST(b.events - 1, 1), 0) > @max_identical_share
        OR (@has_max_value AND (b.x > @max_value OR b.x < 0)) THEN 'bot'
    END AS removed_by
  FROM base b CROSS JOIN spread s
  WHERE b.analysed
),
cap AS (
  SELECT IF(@has_fixed_cap, @fixed_cap, {
      exact_quantile("SELECT x AS v FROM unit_rows WHERE removed_by IS NULL AND x > 0", "@percentile")
      if percentile_cap else "CAST(NULL AS FLOAT64)"}) AS value
)""")
    ctes.append(_unit_groups(crossing))
    selects = [
        _counts("filter", "removed_by", "removed_by IS NOT NULL"),
        _counts("scope", "CAST(NULL AS STRING)", "TRUE"),
        f"""
  SELECT 'cap' AS kind, CAST(NULL AS STRING) AS arm, CAST(NULL AS STRING) AS name, CAST(NULL AS STRING) AS region,
         0 AS n, {", ".join(f"CAST(NULL AS FLOAT64) AS {c}" for c in ("sx", "sxx", "sp", "spp", "sxp"))},
         (SELECT value FROM cap) AS kx, CAST(NULL AS FLOAT64) AS kp, CAST(NULL AS FLOAT64) AS sxxx""",
        _counts("capped", "CAST(NULL AS STRING)", "above"),
        _counts("kept", "CAST(NULL AS STRING)", "removed_by IS NULL"),
        _sums("stats", "", "removed_by IS NULL"),
        _sums("capped_stats", "c", "removed_by IS NULL AND (SELECT value FROM cap) IS NOT NULL"),
    ]
    if crossing:
        selects.append(_sums("clean_stats", "f", "removed_by IS NULL"))
    if population:
        ctes.append(_POPULATION_OF_BASE)
        selects += _population_rows()
    return "WITH " + ",".join(ctes) + "\n" + "\nUNION ALL".join(selects)


_FLAGS = f"""
flags AS (SELECT DISTINCT unit_id FROM {deduped(FRAUD_FLAGS)})"""

# per arm; timestamps as microseconds since 1970 (NULL: none)
POPULATION_FACTS = ("units", "consenting", "missing", "events", "late", "newest", "first_exposed", "flagged")


def _population(source: str) -> str:
    return f"""
population AS (
  SELECT u.arm, COUNT(*) AS units, COUNTIF(u.consent) AS consenting,
         COUNTIF(u.consent AND a.unit_id IS NULL) AS missing,
         SUM(IF(u.consent, IFNULL(a.events, 0), 0)) AS events, SUM(IF(u.consent, IFNULL(a.late, 0), 0)) AS late,
         UNIX_MICROS(MAX(IF(u.consent, a.last_seen, NULL))) AS newest, UNIX_MICROS(MIN(u.exposed_at)) AS first_exposed,
         COUNTIF(fl.unit_id IS NOT NULL) AS flagged
  FROM {source} u LEFT JOIN activity a ON a.unit_id = u.unit_id LEFT JOIN flags fl ON fl.unit_id = u.unit_id
  GROUP BY u.arm
)"""


# the population facts from `base` (every unit of `everyone`, joined once to its activity)
_POPULATION_OF_BASE = """
population AS (
  SELECT arm, COUNT(*) AS units, COUNTIF(consent) AS consenting, COUNTIF(consent AND NOT active) AS missing,
         SUM(IF(consent, events, 0)) AS events, SUM(IF(consent, IFNULL(late, 0), 0)) AS late,
         UNIX_MICROS(MAX(IF(consent, last_seen, NULL))) AS newest, UNIX_MICROS(MIN(exposed_at)) AS first_exposed,
         COUNTIF(fraud) AS flagged
  FROM base
  GROUP BY arm
)"""


def _population_rows() -> list[str]:
    return [f"""
  SELECT 'population' AS kind, arm, '{fact}' AS name, CAST(NULL AS STRING) AS region, {fact} AS n, {_NULLS}
  FROM population""" for fact in POPULATION_FACTS]


def population() -> str:
    """Per arm (variants and holdout): units, consenting units without any data, events, late
    events, the newest event and the first exposure; and the units flagged as fraud, as rows of
    kind 'population' (arm, fact name, value in n). Parameters: experiment_id, arms, left_out,
    activity_metrics."""
    ctes = [_exposed(), _activity(signals=False), _FLAGS, _population("units")]
    return "WITH " + ",".join(ctes) + "\n" + "\nUNION ALL".join(_population_rows())


def arms_of() -> str:
    """The arm of each of the given units (parameter units) in one experiment."""
    return "WITH " + _exposed() + "\nSELECT unit_id, arm FROM units WHERE unit_id IN UNNEST(@units)"


SPEC_SEPARATOR = "/"  # never in an experiment id or a metric name (models.common.ID_PATTERN)


def snapshot() -> str:
    """The sweep's sufficient statistics for every running experiment at once: per experiment,
    arm and landed metric, over all units exposed with one arm (a unit without events counts
    as 0), each unit's total after first exposure, 0/1 for a conversion, capped at the KPI's
    perUnitCap; and how many of those units have events of the metric (`with_data`).
    Parameters: experiments, metrics, since (the earliest start: older partitions
    are never read), spec (one string per experiment and metric:
    `experiment/metric/binary 0|1/cap or empty`). Its cost grows with the running experiments'
    exposures and the events since they started, never with all history."""
    sep = SPEC_SEPARATOR
    return f"""
WITH spec AS (
  SELECT SPLIT(s, '{sep}')[SAFE_OFFSET(0)] AS experiment_id, SPLIT(s, '{sep}')[SAFE_OFFSET(1)] AS metric,
         SPLIT(s, '{sep}')[SAFE_OFFSET(2)] = '1' AS binary,
         SAFE_CAST(NULLIF(SPLIT(s, '{sep}')[SAFE_OFFSET(3)], '') AS FLOAT64) AS cap
  FROM UNNEST(@spec) AS s
),
exposed AS (
  SELECT experiment_id, unit_id, MIN(exposed_at) AS exposed_at,
         COUNT(DISTINCT CONCAT(status, ':', IFNULL(variant, ''))) AS arms_seen,
         MAX(IF(status = 'HOLDOUT', 'holdout', variant)) AS arm
  FROM {deduped(EXPOSURES, 'experiment_id IN UNNEST(@experiments)')}
  GROUP BY experiment_id, unit_id
),
units AS (SELECT experiment_id, unit_id, arm, exposed_at FROM exposed WHERE arms_seen = 1 AND arm IS NOT NULL),
totals AS (
  SELECT u.experiment_id, u.unit_id, k.metric, SUM(k.value) AS x,
         {_pick("k.pre_value", order_key("k.event_time", "k.event_id"))} AS pre
  FROM units u JOIN {deduped(KPI_EVENTS, 'metric IN UNNEST(@metrics) AND event_time >= @since')} k
    ON k.unit_id = u.unit_id AND k.event_time >= u.exposed_at
  GROUP BY u.experiment_id, u.unit_id, k.metric
),
shaped AS (
  SELECT u.experiment_id, u.arm, sp.metric,
         IF(sp.cap IS NULL, v, LEAST(v, sp.cap)) AS v, c, has_data
  FROM (
    SELECT u.experiment_id, u.unit_id, u.arm, sp.metric, t.x IS NOT NULL AS has_data,
           IF(sp.binary, IF(COALESCE(t.x, 0) > 0, 1.0, 0.0), COALESCE(t.x, 0)) AS v, COALESCE(t.pre, 0) AS c
    FROM units u JOIN spec sp ON sp.experiment_id = u.experiment_id
    LEFT JOIN totals t ON t.experiment_id = u.experiment_id AND t.unit_id = u.unit_id AND t.metric = sp.metric
  ) u JOIN spec sp ON sp.experiment_id = u.experiment_id AND sp.metric = u.metric
),
centred AS (
  SELECT experiment_id, arm, metric, v, c, has_data,
         AVG(v) OVER (PARTITION BY experiment_id, arm, metric) AS kx,
         AVG(c) OVER (PARTITION BY experiment_id, arm, metric) AS kp
  FROM shaped
)
SELECT experiment_id, arm, metric, COUNT(*) AS n, SUM(v - kx) AS sx, SUM((v - kx) * (v - kx)) AS sxx,
       SUM(c - kp) AS sp, SUM((c - kp) * (c - kp)) AS spp, SUM((v - kx) * (c - kp)) AS sxp,
       ANY_VALUE(kx) AS kx, ANY_VALUE(kp) AS kp, SUM((v - kx) * (v - kx) * (v - kx)) AS sxxx,
       COUNTIF(has_data) AS with_data
FROM centred
GROUP BY experiment_id, arm, metric"""
