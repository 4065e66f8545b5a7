"""Stored documents are TypedDicts, so the type checker knows their keys: a misspelt field in a
service is a mypy error, not a silent `None` at run time. These run mypy itself (its API, with
the project's configuration and cache) on small snippets that use the repositories' types."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from mypy import api

from functions.adapters.repositories import snapshots
from functions.adapters.repositories.analyses import AnalysisDoc
from functions.adapters.repositories.cohorts import CohortChanges, CohortDoc
from functions.adapters.repositories.experiments import (
    DefinitionDoc,
    ExperimentChanges,
    ExperimentDoc,
    ExperimentEventDoc,
)
from functions.adapters.repositories.rollouts import PlanDoc, RolloutEventDoc
from functions.models.analytics import AnalysisSummary, AnalysisView, ReplayResult
from functions.models.experiments import (
    ExperimentDefinition,
    ExperimentEvent,
    ExperimentHealth,
    ExperimentOverview,
    ExperimentSummary,
    LifecycleResult,
    LifecycleStep,
    SnapshotPoint,
    SweepFailure,
    SweepResult,
    SweepStatus,
    SweptExperiment,
)
from functions.models.holdouts import Cohort, CohortUpdate
from functions.models.rollouts import PlanChange, RolloutEventOut, RolloutHealth, RolloutPlanOut
from functions.services import sweep
from functions.services.analytics.analyses import AnalysisResultView, AnalysisSummaryView, ReplayView
from functions.services.experiments.health import ExperimentHealthView, SweepStatusView
from functions.services.experiments.lifecycle_helper import LifecycleStepView, LifecycleView
from functions.services.experiments.overview import OverviewView
from functions.services.experiments.views import ExperimentSummaryView, SnapshotPointView
from functions.services.rollouts.health import RolloutHealthView
from functions.services.rollouts.plans import PlanChangeView
from functions.services.rollouts.store import RolloutEventView

ROOT = Path(__file__).resolve().parents[3]

CORRECT = '''
from functions.adapters.repositories.experiments import ExperimentChanges, ExperimentDoc

def state_of(doc: ExperimentDoc) -> str:
    return doc["state"]

def bump(doc: ExperimentDoc) -> ExperimentChanges:
    return {"version": doc["version"] + 1, "planHash": "abc"}
'''

# each misspelling sits on its own line, so the test can tell which ones mypy caught
MISSPELT = '''
from functions.adapters.repositories.experiments import ExperimentChanges, ExperimentDoc

def state_of(doc: ExperimentDoc) -> str:
    return doc["stat"]

def bump(doc: ExperimentDoc) -> ExperimentChanges:
    return {"version": doc["version"] + 1, "planhash": "abc"}

def version_text(doc: ExperimentDoc) -> str:
    return doc["version"]
'''


def check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str) -> tuple[int, list[str]]:
    """mypy's exit status and its error lines for one snippet, checked from the project root (so
    `functions` resolves and `.mypy_cache` is reused)."""
    snippet = tmp_path / "snippet.py"
    snippet.write_text(source)
    monkeypatch.chdir(ROOT)
    out, err, status = api.run([str(snippet), "--config-file", str(ROOT / "pyproject.toml")])
    assert not err, err
    return status, [line for line in out.splitlines() if ": error:" in line]


def test_correct_keys_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    status, errors = check(tmp_path, monkeypatch, CORRECT)
    assert errors == [] and status == 0


def test_misspelt_keys_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    status, errors = check(tmp_path, monkeypatch, MISSPELT)
    assert status == 1
    lines = {int(m.group(1)) for e in errors if (m := re.search(r"snippet\.py:(\d+):", e))}
    source = MISSPELT.splitlines()
    flagged = {source[n - 1].strip() for n in lines}
    assert flagged == {'return doc["stat"]', 'return {"version": doc["version"] + 1, "planhash": "abc"}',
                       'return doc["version"]'}
    assert any('has no key "stat"' in e for e in errors)
    assert any('"planhash"' in e for e in errors)
    assert any("Incompatible return value" in e for e in errors)  # version is an int, not a str


def keys(typed: Any) -> set[str]:
    return set(typed.__required_keys__) | set(typed.__optional_keys__)


def test_stored_shapes_match_the_models_they_are_dumped_from() -> None:
    """Services cast a pydantic dump to these TypedDicts; the cast is only true while the keys agree."""
    assert keys(DefinitionDoc) == set(ExperimentDefinition.model_fields)
    assert set(DefinitionDoc.__required_keys__) == {n for n, f in ExperimentDefinition.model_fields.items()
                                                    if f.is_required()}
    assert keys(DefinitionDoc) <= keys(ExperimentDoc) and keys(ExperimentChanges) <= keys(ExperimentDoc)
    assert keys(CohortChanges) == set(CohortUpdate.model_fields) - {"expectedVersion"}
    assert keys(CohortDoc) == set(Cohort.model_fields) - {"id"}  # the public view reads every stored field


@pytest.mark.parametrize(("view", "model"), [
    (ExperimentHealthView, ExperimentHealth), (SweepStatusView, SweepStatus), (LifecycleView, LifecycleResult),
    (LifecycleStepView, LifecycleStep), (ExperimentSummaryView, ExperimentSummary), (SnapshotPointView, SnapshotPoint),
    (OverviewView, ExperimentOverview), (PlanChangeView, PlanChange), (AnalysisSummaryView, AnalysisSummary),
    (AnalysisResultView, AnalysisView), (RolloutEventView, RolloutEventOut), (sweep.SweepResultView, SweepResult),
    (sweep.SweptExperiment, SweptExperiment), (snapshots.SweepFailure, SweepFailure),
    (RolloutHealthView, RolloutHealth), (ReplayView, ReplayResult),
])
def test_a_view_has_its_response_models_fields(view: Any, model: Any) -> None:
    assert keys(view) == set(model.model_fields)


def test_views_built_from_documents_keep_the_stored_fields() -> None:
    """A view built by a cast from a stored document keeps the response model's keys."""
    assert keys(AnalysisSummaryView) == keys(AnalysisDoc) - {"resultJson"}
    assert keys(RolloutEventDoc) | {"experimentVersion", "experimentState"} == set(RolloutEventOut.model_fields)
    assert keys(PlanDoc) == set(RolloutPlanOut.model_fields)
    assert keys(ExperimentEventDoc) == {f.alias or name for name, f in ExperimentEvent.model_fields.items()}
