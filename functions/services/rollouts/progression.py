"""Auto-progression, called by the sweep for every RUNNING experiment.

Inputs are read first (count aggregations cannot run inside a transaction), then one
transaction re-reads the plan and only acts if nobody moved it meanwhile (`seq` unchanged):
two concurrent sweeps compute the same move, one commits, the other sees a new `seq` and
does nothing. The event id is deterministic per (experiment, seq, kind, from, to), and is
created, so even a lost read-check could not land twice.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from google.api_core import exceptions as gexc

from functions.adapters.auth import SYSTEM
from functions.adapters.repositories.experiments import ExperimentDoc
from functions.adapters.unit_of_work import UnitOfWork, atomically
from functions.core.rollout import plan as plan_core
from functions.core.rollout.plan import PlanState
from functions.core.rollout.progression import Decision, Step, decide
from functions.core.rollout.requirements import RequirementResult, evaluate
from functions.services.experiments import repository as experiments
from functions.services.rollouts import inputs, store

log = logging.getLogger(__name__)


def assess(experiment: ExperimentDoc, state: PlanState, now: datetime
           ) -> tuple[inputs.Observed, list[RequirementResult], Decision]:
    observed = inputs.observe(experiment, state, now)
    results = evaluate(state.requirements[state.index], observed.inputs)
    return observed, results, decide(state, str(experiment.get("state")), results, observed.latest_verdicts)


def _summary(eid: str, state: PlanState, decision: Decision, **more: Any) -> dict[str, Any]:
    return {"experimentId": eid, "step": decision.step.value, "reason": decision.reason, "stage": state.stage,
            "status": state.status.value, "blocking": [r.name for r in decision.blocking], **more}


def progress_experiment(experiment_id: str, now: datetime) -> dict[str, Any] | None:
    """One sweep step for one experiment; None when it has no rollout plan."""
    plan_doc = store.find_plan(experiment_id)
    if plan_doc is None:
        return None
    experiment = experiments.load(experiment_id)
    seen = PlanState.from_doc(plan_doc)
    observed, results, decision = assess(experiment, seen, now)
    if decision.step in (Step.HOLD, Step.NONE):
        return _summary(experiment_id, seen, decision)

    def work(uow: UnitOfWork) -> store.RolloutEventView | None:
        current = store.read(uow, experiment_id)
        state = current.state
        if state.seq != seen.seq:
            return None  # someone else moved the rollout since we looked
        exp_state = current.experiment.get("state")
        actor = SYSTEM.to_dict()
        if decision.step == Step.ADVANCE:
            if exp_state != "RUNNING":
                return None
            after, change = plan_core.advance(state, now, observed.exposures)
            return store.commit(uow, current, after, change, actor=actor, reason=decision.reason, now=now,
                                results=results, exposures=observed.exposures)
        after, change = plan_core.abort(state)
        if decision.step == Step.ABORT and exp_state in ("RUNNING", "PAUSED"):
            breach = dict(decision.breach or {})
            kill = {"guardrail": breach.get("guardrail"), "observed": breach.get("observed"),
                    "bound": breach.get("bound"), "arm": breach.get("arm"), "snapshotId": observed.snapshot_id,
                    "source": "rollout"}
            return store.commit(uow, current, after, change, actor=actor, reason=decision.reason, now=now,
                                results=results, exposures=observed.exposures, kill=kill)
        return store.commit(uow, current, after, change, actor=actor, reason=f"sync: {decision.reason}", now=now,
                            results=results, exposures=observed.exposures)

    try:
        event = atomically(work)
    except gexc.AlreadyExists:  # the deterministic event id exists: a concurrent sweep made this very move
        event = None
    if event is None:
        return _summary(experiment_id, seen, Decision(Step.HOLD, "another sweep moved the rollout first"))
    return _summary(experiment_id, seen, decision, toStage=event["toStage"], eventId=event["eventId"])
