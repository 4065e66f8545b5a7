"""One experiment as a page shows it: the definition, its health and its snapshot series, read
in one pass. The three share one document read and one snapshot query (the newest snapshot of
the series is the one health judges), where the three separate routes make two of each."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TypedDict

from functions.models.experiments import ExperimentOut
from functions.services.experiments import health, repository, views


class OverviewView(TypedDict):
    """`models.experiments.ExperimentOverview`: the experiment, its health, its snapshot series."""

    experiment: ExperimentOut
    health: health.ExperimentHealthView
    snapshots: list[views.SnapshotPointView]


_pool = ThreadPoolExecutor(max_workers=6, thread_name_prefix="overview")


def overview(experiment_id: str, limit: int = views.SERIES_LIMIT) -> OverviewView:
    doc = repository.load(experiment_id)
    snaps = _pool.submit(views.snapshot_docs, experiment_id, limit, [*views.SERIES_FIELDS, "unitsWithKpis"])
    sweep = _pool.submit(health.sweep_status)
    exposures = health.exposure_counts(experiment_id, [v["key"] for v in doc["variants"]])
    newest_first = snaps.result()
    return {"experiment": repository.to_out(doc),
            "health": health.assess(experiment_id, doc, exposures, newest_first[0] if newest_first else None,
                                    sweep.result()),
            "snapshots": [views.series_point(d) for d in reversed(newest_first)]}
