"""An analysis's inputs from the metric store: per KPI one query that returns counts and
sufficient statistics (`queries.analysis`), turned into the pipeline's `Aggregated`; and the
population facts (units per arm, missing and late data, first exposure, fraud flags); and the
units linked across arms by spillover links."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from functions.adapters.metric_store import queries, schema, store
from functions.core.metrics.facts import MetricDefinition, facts_sql
from functions.core.stats.corrections import ExclusionConfig
from functions.core.stats.pipeline import MEAN, PROPORTION, RATIO, Aggregated, Removal, Stats
from functions.core.stats.sufficient import MomentStats, RatioStats
from functions.services.experiments import metrics

HOLDOUT_ARM = "holdout"
FILTERS = ("consent", "region", "fraud", "bot")


def tracked_metrics(doc: Mapping[str, Any]) -> list[str]:
    """Every landed metric the experiment reads: its KPIs (ratio parts included) and guardrails."""
    names: list[str] = []
    for kpi in doc.get("kpis") or []:
        parts = [kpi["numerator"], kpi["denominator"]] if kpi.get("type") == RATIO else [kpi["metric"]]
        names += parts
    names += [g["metric"] for g in doc.get("guardrails") or []]
    return sorted(set(names))


def _spec_of(doc: Mapping[str, Any], metric: str) -> Mapping[str, Any]:
    for kpi in doc.get("kpis") or []:
        if kpi.get("metric") == metric and kpi.get("type") != RATIO:
            return kpi
    return {}


def part(doc: Mapping[str, Any], metric: str, param: str,
         definition: MetricDefinition | None = None) -> queries.MetricPart:
    """A metric as a query part: the project's landed KPI events (with their pre-period values),
    or the facts of a definition over the user's own table (its aggregation, attribution window,
    CUPED pre-period and cap); 0/1 for a PROPORTION KPI, capped at the KPI's perUnitCap."""
    spec = _spec_of(doc, metric)
    cap = spec.get("perUnitCap")
    binary = spec.get("type") == PROPORTION
    if definition is None:
        return queries.landed(param, binary=binary, cap=float(cap) if cap else None)
    facts = (f"SELECT unit_id, event_time, value, CAST(NULL AS FLOAT64) AS pre_value, "
             f"CAST(NULL AS STRING) AS event_id FROM ({facts_sql(definition)})")
    own_cap = definition.cap if definition.cap is not None else (float(cap) if cap else None)
    return queries.MetricPart(facts, aggregation=str(definition.aggregation), binary=binary, cap=own_cap,
                              delay_hours=definition.delayHours, window_hours=definition.windowHours,
                              pre_days=definition.cupedPreDays)


@dataclass(frozen=True)
class Scope:
    """Which units one analysis reads: the arms, units left out, and units linked across arms
    (None: links are not tracked for this experiment)."""

    experiment_id: str
    arms: tuple[str, ...]
    activity_metrics: tuple[str, ...]
    left_out: tuple[str, ...] = ()
    crossing: tuple[str, ...] | None = None

    def params(self) -> dict[str, Any]:
        return {"experiment_id": self.experiment_id, "arms": list(self.arms), "left_out": list(self.left_out),
                "activity_metrics": list(self.activity_metrics)}


def _stats(row: Mapping[str, Any], ratio: bool) -> Stats:
    if ratio:
        return RatioStats(*(float(row[c] or 0.0) for c in ("n", "sx", "sxx", "sp", "spp", "sxp", "kx", "kp")))
    return MomentStats(*(float(row[c] or 0.0) for c in ("n", "sx", "sxx", "sp", "spp", "sxp", "kx", "kp", "sxxx")))


def aggregated(doc: Mapping[str, Any], kpi: Mapping[str, Any], scope: Scope, ex: ExclusionConfig,
               defined: Mapping[str, MetricDefinition] | None = None) -> Aggregated:
    """One KPI's `Aggregated` for the arms in `scope`, computed in the metric store. `defined`:
    the definitions its facts come from (by role, as `metrics.kpi_facts` gives them), when not the
    KPI's own."""
    rows = _kpi_rows(doc, kpi, scope, ex, defined, None)
    return _assemble(rows, scope, kpi.get("type") == RATIO, tuple(ex.restricted_regions))


def aggregated_with_population(doc: Mapping[str, Any], kpi: Mapping[str, Any], scope: Scope, ex: ExclusionConfig,
                               everyone: Scope) -> tuple[Aggregated, dict[str, ArmFacts]]:
    """`aggregated()` and `population(everyone)` from one query: both read the same raw rows, so
    an analysis scans them once for its first KPI and its population facts. `everyone` must be
    the same experiment with the same activity metrics, and nobody left out."""
    if (everyone.experiment_id, everyone.activity_metrics, everyone.left_out) != (
            scope.experiment_id, scope.activity_metrics, ()):
        raise ValueError("the population scope must be the analysis's experiment and metrics, nobody left out")
    rows = _kpi_rows(doc, kpi, scope, ex, None, everyone)
    facts = _population_facts(r for r in rows if r["kind"] == "population")
    rest = [r for r in rows if r["kind"] != "population"]
    return _assemble(rest, scope, kpi.get("type") == RATIO, tuple(ex.restricted_regions)), facts


def _kpi_rows(doc: Mapping[str, Any], kpi: Mapping[str, Any], scope: Scope, ex: ExclusionConfig,
              defined: Mapping[str, MetricDefinition] | None, everyone: Scope | None) -> list[dict[str, Any]]:
    ratio = kpi.get("type") == RATIO
    if defined is None:
        defined = metrics.kpi_facts(kpi) if kpi.get("definition") is not None else {}
    if ratio:
        first = part(doc, kpi["numerator"], "m0", defined.get("numerator"))
        second: queries.MetricPart | None = part(doc, kpi["denominator"], "m1", defined.get("denominator"))
        metric_params = {"m0": kpi["numerator"], "m1": kpi["denominator"]}
    else:
        first, second = part(doc, kpi["metric"], "m0", defined.get("value")), None
        metric_params = {"m0": kpi["metric"]}
    capping = kpi.get("type", MEAN) == MEAN
    sql = queries.analysis(first, second, ratio=ratio, percentile_cap=capping and ex.winsor_percentile is not None,
                           crossing=scope.crossing is not None, population=everyone is not None)
    params = {**scope.params(), **metric_params,
              "restricted_regions": list(ex.restricted_regions), "max_events_per_day": float(ex.max_events_per_day),
              "mad_threshold": float(ex.mad_threshold), "max_identical_share": float(ex.max_identical_timestamp_share),
              "has_max_value": ex.max_value is not None, "max_value": float(ex.max_value or 0.0),
              "percentile": float(ex.winsor_percentile or 0.0),
              "has_fixed_cap": capping and ex.winsor_cap is not None, "fixed_cap": float(ex.winsor_cap or 0.0),
              "crossing_units": list(scope.crossing or ())}
    if everyone is not None:
        params["population_arms"] = list(everyone.arms)
    return store().query(sql, params)


def _assemble(rows: Iterable[Mapping[str, Any]], scope: Scope, ratio: bool, restricted: tuple[str, ...]) -> Aggregated:
    arms = scope.arms
    Counts = dict[str, dict[str, dict[str, dict[str, int]]]]  # kind -> name -> arm -> region -> units
    counts: Counts = defaultdict(lambda: defaultdict(lambda: defaultdict(dict)))
    sums: dict[str, dict[str, Stats]] = defaultdict(dict)
    cap = None
    for row in rows:
        kind = row["kind"]
        if kind == "cap":
            cap = float(row["kx"]) if row["kx"] is not None else None
        elif kind.endswith("stats"):
            sums[kind][row["arm"]] = _stats(row, ratio)
        else:
            counts[kind][row["name"] or ""][row["arm"]][row["region"]] = int(row["n"])
    scope_by_region = {arm: dict(counts["scope"][""].get(arm, {})) for arm in arms}
    assigned = {arm: float(sum(scope_by_region[arm].values())) for arm in arms}
    filters = {}
    for name in FILTERS:
        by_region = {arm: dict(counts["filter"][name].get(arm, {})) for arm in arms}
        filters[name] = Removal({arm: sum(by_region[arm].values()) for arm in arms}, assigned, by_region,
                                scope_by_region)
    empty: Stats = RatioStats() if ratio else MomentStats()
    stats = {arm: sums["stats"].get(arm, empty) for arm in arms}
    cap_removal = capped = None
    if cap is not None:
        kept = {arm: dict(counts["kept"][""].get(arm, {})) for arm in arms}
        above = {arm: dict(counts["capped"][""].get(arm, {})) for arm in arms}
        cap_removal = Removal({arm: sum(above[arm].values()) for arm in arms},
                              {arm: float(sum(kept[arm].values())) for arm in arms}, above, kept)
        capped = {arm: sums["capped_stats"].get(arm, empty) for arm in arms}
    clean = {arm: sums["clean_stats"].get(arm, empty) for arm in arms} if scope.crossing is not None else None
    return Aggregated(assigned, filters, stats, cap, cap_removal, capped, clean, restricted)


@dataclass(frozen=True)
class ArmFacts:
    units: int
    consenting: int
    missing: int
    events: int
    late: int
    newest: datetime | None
    first_exposed: datetime | None
    flagged: int


def _micros(value: int | None) -> datetime | None:
    """Microseconds since 1970 (exact: no float division) -> an aware UTC datetime."""
    return None if value is None else EPOCH + timedelta(microseconds=value)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def population(scope: Scope) -> dict[str, ArmFacts]:
    """arm -> what the data-quality checks and the run-rate need, for every arm in scope."""
    return _population_facts(store().query(queries.population(), scope.params()))


def _population_facts(rows: Iterable[Mapping[str, Any]]) -> dict[str, ArmFacts]:
    """Rows of kind 'population' (arm, fact, value) -> arm -> ArmFacts."""
    by_arm: dict[str, dict[str, int | None]] = defaultdict(dict)
    for row in rows:
        by_arm[row["arm"]][row["name"]] = None if row["n"] is None else int(row["n"])
    return {arm: ArmFacts(int(f.get("units") or 0), int(f.get("consenting") or 0), int(f.get("missing") or 0),
                          int(f.get("events") or 0), int(f.get("late") or 0), _micros(f.get("newest")),
                          _micros(f.get("first_exposed")), int(f.get("flagged") or 0))
            for arm, f in by_arm.items()}


def arms_of(experiment_id: str, units: Iterable[str], arms: Iterable[str]) -> dict[str, str]:
    """The arm of each given unit that the experiment analyses (units not exposed are absent)."""
    wanted = sorted(set(units))
    if not wanted:
        return {}
    rows = store().query(queries.arms_of(), {"experiment_id": experiment_id, "arms": list(arms), "left_out": [],
                                             "units": wanted})
    return {r["unit_id"]: r["arm"] for r in rows}


def links_query() -> str:
    """A cohort's links, each landed link once (kept apart from `queries`, whose analysis SQL
    takes the linked units as a parameter)."""
    return (f"SELECT source_unit_id, target_unit_id FROM {schema.deduped(schema.LINKS, 'cohort_id = @cohort_id')} "
            "ORDER BY source_unit_id, target_unit_id")


def crossing_units(experiment_id: str, cohort_id: str | None, arms: tuple[str, ...]) -> set[str]:
    """Units of the experiment whose linked component holds another arm (holdout included).
    Links refused under BLOCK never landed. Components are built from the cohort's landed links
    (the holdouts module's forest tracks holdout sides; analysis needs arms), and only the linked
    units' arms are read."""
    if not cohort_id:
        return set()
    # imported here: scipy.cluster pulls in scipy.spatial, about 0.2 s of every function's cold
    # start, and only analyses of experiments with tracked links build components
    from scipy.cluster.hierarchy import DisjointSet

    comps: DisjointSet[str] = DisjointSet()
    for row in store().query(links_query(), {"cohort_id": cohort_id}):
        source, target = str(row["source_unit_id"]), str(row["target_unit_id"])
        comps.add(source)
        comps.add(target)
        comps.merge(source, target)
    arm_of = arms_of(experiment_id, list(comps), arms)
    seen: dict[str, set[str]] = {}
    for unit, arm in arm_of.items():
        seen.setdefault(comps[unit], set()).add(arm)
    return {u for u in arm_of if len(seen[comps[u]]) > 1}
