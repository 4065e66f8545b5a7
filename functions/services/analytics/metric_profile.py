"""A metric's shape over its history, read once over many more units than one experiment has.

The skewness gate (docs/statistics.md) needs the per-unit skewness of a mean KPI. Read from an
experiment's own samples it is low exactly when they missed their largest values, and those are
the data sets whose interval is too narrow; read from history it does not depend on them. This
profile is what `Kpi.historicalSkewness` is set from."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from functions.adapters.metric_store import queries, store
from functions.adapters.metric_store.profile import profile_sql
from functions.core.clock import utc_now
from functions.core.stats.inference import MAX_MEAN_SKEWNESS, finite
from functions.core.stats.sufficient import MomentStats

ESTIMAND = ("per-unit total of {metric} over {days} days, every unit with analytics consent exposed to {who}, "
            "zeros included")


# An automatic history is used when it is a read of its own: enough units that its skewness is
# not the handful of units an experiment's arm has. However few of them have a value: a sparse
# history reads a large skewness (a share p with a value alone gives about 1/sqrt(p)), which only
# asks for more units, while refusing it hands the gate to the samples' own shape, whose published
# intervals covered 62-74% on 1% payers (`bench calibration`, thin history, with 30 required).
MIN_HISTORY_UNITS = 1000


def profile(metric: str, days: int, experiment_id: str | None = None, until: datetime | None = None,
            part: queries.MetricPart | None = None) -> dict[str, Any]:
    """`part`: how the metric's facts are read and shaped per unit (an analysis passes its KPI's:
    a fact-table definition, a cap, 0/1); by default the landed KPI events `metric`, summed."""
    until = until or utc_now()
    since = until - timedelta(days=days)
    part = part or queries.landed("metric")
    [row] = store().query(profile_sql(part), {"metric": metric, "since": since, "until": until,
                                              "experiments": [experiment_id] if experiment_id else []})
    n = int(row.get("n") or 0)
    stats = MomentStats(n=float(n), sum_x=float(row.get("sx") or 0.0), sum_x2=float(row.get("sxx") or 0.0),
                        shift_x=float(row.get("kx") or 0.0), sum_x3=float(row.get("sxxx") or 0.0))
    skewness = stats.skewness
    return finite({
        "metric": metric, "since": since.isoformat(), "until": until.isoformat(), "experimentId": experiment_id,
        "units": n, "nonZeroUnits": int(row.get("nonzero") or 0),
        "mean": stats.mean if n else None, "sd": math.sqrt(stats.var) if n >= 2 else None,
        "skewness": skewness,
        "neededUnitsPerArm": math.ceil((skewness / MAX_MEAN_SKEWNESS) ** 2) if skewness is not None else None,
        "estimand": ESTIMAND.format(metric=metric, days=days,
                                    who=f"experiment {experiment_id}" if experiment_id else "any experiment"),
    })


def history_before(metric: str, started_at: datetime, days: int,
                   part: queries.MetricPart | None = None) -> dict[str, Any] | None:
    """The metric's profile over the `days` before an experiment started, when it can stand in
    for `Kpi.historicalSkewness`: the window ends at the start, so it holds none of the
    experiment's own outcomes, and its skewness does not move with the experiment's samples.
    None when it is too thin to read a shape from."""
    if days <= 0:
        return None
    read = profile(metric, days, until=started_at, part=part)
    usable = read["skewness"] is not None and read["units"] >= MIN_HISTORY_UNITS
    return read if usable else None
