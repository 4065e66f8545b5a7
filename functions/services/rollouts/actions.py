"""Operator actions: pause / resume (exposure frozen), rollback one stage, emergency abort
(kills the experiment in the same commit, which publishes the kill switch), stage approval,
and manual advance (requirements must hold unless an admin overrides with a written reason)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from functions.adapters.auth import Principal
from functions.adapters.repositories.experiments import ExperimentDoc
from functions.adapters.repositories.rollouts import RolloutEventExtra
from functions.adapters.unit_of_work import UnitOfWork, atomically
from functions.core.clock import utc_now
from functions.core.errors import Conflict, ErrorCode, Forbidden, Unprocessable
from functions.core.rollout import plan as plan_core
from functions.core.rollout.plan import Change, PlanState
from functions.core.rollout.requirements import MANUAL_APPROVAL, RequirementResult, blocking
from functions.services.experiments import repository as experiments
from functions.services.rollouts import inputs, store
from functions.services.rollouts.progression import assess

LIVE = ("RUNNING", "PAUSED")


def _require_live(experiment: ExperimentDoc, *allowed: str) -> None:
    state = experiment.get("state")
    if state not in (allowed or LIVE):
        raise Conflict(f"the experiment is {state}", code=ErrorCode.EXPERIMENT_NOT_LIVE,
                       details={"state": state, "allowed": list(allowed or LIVE)})


def _act(experiment_id: str, actor: dict[str, str], reason: str,
         move: Callable[[PlanState, ExperimentDoc], tuple[PlanState, Change]],
         exposures: dict[str, int] | None = None, kill_if_live: bool = False,
         extra: RolloutEventExtra | None = None, results: Sequence[RequirementResult] = ()) -> store.RolloutEventView:

    def work(uow: UnitOfWork) -> store.RolloutEventView:
        current = store.read(uow, experiment_id)
        after, change = move(current.state, current.experiment)
        kill = None
        if kill_if_live and current.experiment.get("state") in LIVE:
            kill = {"guardrail": None, "observed": None, "bound": None, "source": "rollout-abort"}
        now = utc_now()
        return store.commit(uow, current, after, change, actor=actor, reason=reason or change.kind.value, now=now,
                            exposures=exposures, kill=kill, extra=extra, results=results)

    event = atomically(work)
    return event


def _counts(experiment_id: str) -> dict[str, int]:
    experiment = experiments.load(experiment_id)
    return inputs.exposure_counts(experiment_id, [k for k, _ in inputs.weights(experiment)])


def pause(experiment_id: str, actor: dict[str, str], reason: str) -> store.RolloutEventView:
    def move(state: PlanState, exp: ExperimentDoc) -> tuple[PlanState, Change]:
        _require_live(exp)
        return plan_core.pause(state)

    return _act(experiment_id, actor, reason, move)


def resume(experiment_id: str, actor: dict[str, str], reason: str) -> store.RolloutEventView:
    def move(state: PlanState, exp: ExperimentDoc) -> tuple[PlanState, Change]:
        _require_live(exp)
        return plan_core.resume(state)

    return _act(experiment_id, actor, reason, move)


def rollback(experiment_id: str, actor: dict[str, str], reason: str) -> store.RolloutEventView:
    counts = _counts(experiment_id)

    def move(state: PlanState, exp: ExperimentDoc) -> tuple[PlanState, Change]:
        _require_live(exp)
        return plan_core.rollback(state, utc_now(), counts)

    return _act(experiment_id, actor, reason, move, exposures=counts)


def abort(experiment_id: str, actor: dict[str, str], reason: str) -> store.RolloutEventView:
    """Stage 0 for everyone and the experiment KILLED, in one commit (the kill switch rides the outbox)."""

    def move(state: PlanState, exp: ExperimentDoc) -> tuple[PlanState, Change]:
        _require_live(exp, "RUNNING", "PAUSED", "KILLED")
        return plan_core.abort(state)

    return _act(experiment_id, actor, reason, move, exposures=_counts(experiment_id), kill_if_live=True)


def approve_stage(experiment_id: str, actor: dict[str, str], reason: str) -> store.RolloutEventView:
    def move(state: PlanState, exp: ExperimentDoc) -> tuple[PlanState, Change]:
        _require_live(exp)
        return plan_core.approve_stage(state)

    return _act(experiment_id, actor, reason, move)


def advance(experiment_id: str, principal: Principal, reason: str, override: bool) -> store.RolloutEventView:
    """Requirements are evaluated now; an operator's advance is itself the manual approval."""
    experiment = experiments.load(experiment_id)
    seen = store.require_plan(experiment_id)
    state = PlanState.from_doc(seen)
    plan_core.ensure_can_advance(state)  # a paused or final rollout says so, not "requirements not met"
    now = utc_now()
    observed, results, _ = assess(experiment, state, now)
    failing = blocking(results, ignore=frozenset({MANUAL_APPROVAL}))
    if override:
        if "admin" not in principal.roles:
            raise Forbidden("only an admin may override failing requirements", code=ErrorCode.OVERRIDE_NEEDS_ADMIN)
        if not reason.strip():
            raise Unprocessable("an override needs a written reason", code=ErrorCode.OVERRIDE_NEEDS_REASON,
                                details={"reason": "reason must not be empty"})
    elif failing:
        raise Conflict("requirements of the current stage are not met", code=ErrorCode.REQUIREMENTS_NOT_MET,
                       details={"blocking": [r.to_dict() for r in failing]})

    def move(current: PlanState, exp: ExperimentDoc) -> tuple[PlanState, Change]:
        _require_live(exp, "RUNNING")
        if current.seq != state.seq:
            raise Conflict("the rollout changed while requirements were evaluated; retry",
                           code=ErrorCode.ROLLOUT_CHANGED, details={"seq": current.seq})
        return plan_core.advance(current, now, observed.exposures, override=bool(override and failing))

    extra: RolloutEventExtra = {"override": bool(override and failing),
                                "overriddenRequirements": [r.name for r in failing]}
    # the event records the values that justified (or were overridden by) the move
    return _act(experiment_id, principal.to_dict(), reason, move, exposures=observed.exposures, extra=extra,
                results=results)
