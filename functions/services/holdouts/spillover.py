"""Spillover isolation: one service function for link events from HTTP and Pub/Sub.

One transaction per event: read the event key and, per affected cohort, the two endpoints and
their roots; then commit together the event record (`holdoutSpilloverEvents/{sha(eventId)}`,
create = idempotency key), the union-find updates, contamination marks, sharded health
counters and a ledger entry for every crossing a policy acted on. A redelivered event finds
its record and returns the stored result unchanged. After the commit, a link that was not
refused lands in the metric store's `links` table (again on every delivery: reads de-duplicate),
where analyses find the units linked across arms.

Policies per cohort and link type:
- CLUSTER: both units take one randomisation id (the wallet/household id, else the source's),
  stored on their nodes as a sticky override that assign reads; a unit whose side changes
  because of it is marked contaminated (it may have been exposed on the other side).
- BLOCK: a crossing (a treatment offer carried into the holdout, or a link across sides) is
  refused: recorded, not linked, and the HTTP route answers 409 SPILLOVER_BLOCKED.
- EXCLUDE: the holdout member reached is marked contaminated from this moment on.
- TRACK: recorded and linked only.
"""

from __future__ import annotations

from typing import Any

from functions.adapters.holdout_keys import unit_key
from functions.adapters.repositories.cohorts import CohortDoc
from functions.adapters.repositories.links import randomisation_ids
from functions.adapters.unit_of_work import UnitOfWork, atomically, reading
from functions.core.clock import now_text, utc_now
from functions.core.errors import Conflict, ErrorCode, NotFound
from functions.models.holdouts import (
    DEFAULT_POLICIES,
    CohortVerdict,
    Component,
    ComponentList,
    LinkType,
    SpilloverLinkIn,
    SpilloverPolicy,
    SpilloverResult,
)
from functions.services.holdouts import counters, membership
from functions.services.holdouts.unionfind import Forest, Node
from functions.services.metrics import landing


def policy_for(cohort: CohortDoc, link_type: LinkType) -> SpilloverPolicy:
    raw = (cohort.get("spilloverPolicies") or {}).get(str(link_type)) or DEFAULT_POLICIES[link_type]
    return SpilloverPolicy(raw)


def _target_cohorts(link: SpilloverLinkIn) -> list[str]:
    if link.cohortIds:
        return sorted(set(link.cohortIds))
    return sorted(reading().cohorts.ids(frozen=True))


def _carries_treatment(link: SpilloverLinkIn) -> bool:
    """A carried offer from a control arm is no treatment; unknown experiments count as treatment."""
    if link.offer is None:
        return True
    control = membership.control_variant(link.offer.experimentId)
    return control is None or link.offer.variant != control


def _crossing(link: SpilloverLinkIn, source: Node, target: Node) -> bool:
    if link.linkType == LinkType.GIFT and link.offer is not None:
        return target.in_holdout and not source.in_holdout and _carries_treatment(link)
    return source.in_holdout != target.in_holdout


def _contaminate(node: Node, link_type: LinkType, at: str) -> bool:
    if node.contaminated:
        return False
    node.contaminated, node.contaminated_by, node.contaminated_at, node.dirty = True, str(link_type), at, True
    return True


def _apply_cohort(
    forest: Forest, cohort: CohortDoc, link: SpilloverLinkIn, at: str
) -> tuple[CohortVerdict, dict[str, int], list[str]]:
    """Decide and stage one cohort's effect; returns the verdict, counter deltas, contaminated keys."""
    policy = policy_for(cohort, link.linkType)
    lt = str(link.linkType)

    def maker(unit_id: str, attrs: dict[str, Any] | None):
        def make() -> Node:
            side = membership.in_holdout(cohort, unit_id, attrs)
            return Node(key=unit_key(unit_id), unit_id=unit_id, holdout=int(side), treated=int(not side),
                        in_holdout=side)
        return make

    source = forest.node(unit_key(link.sourceUnitId), maker(link.sourceUnitId, link.sourceAttributes))
    target = forest.node(unit_key(link.targetUnitId), maker(link.targetUnitId, link.targetAttributes))
    forest.find(source.key)
    forest.find(target.key)
    crossing = _crossing(link, source, target)
    deltas: dict[str, int] = {}
    contaminated: list[Node] = []
    action = "NONE"
    if crossing:
        deltas[counters.CROSSINGS] = 1
        deltas[counters.by_link(counters.CROSSINGS, lt)] = 1
    if policy == SpilloverPolicy.BLOCK and crossing:
        deltas[counters.BLOCKED] = 1
        action = "BLOCKED"
    else:
        if policy == SpilloverPolicy.CLUSTER:
            cluster = source.randomisation_id or link.clusterId or source.unit_id or link.sourceUnitId
            for node, attrs in ((source, link.sourceAttributes), (target, link.targetAttributes)):
                if node.randomisation_id is None:
                    node.randomisation_id, node.dirty = cluster, True
                    moved = forest.set_side(node, membership.in_holdout(cohort, cluster, attrs))
                    # a moved unit may have been exposed on its old side: keep it out of holdout analysis
                    if moved and _contaminate(node, link.linkType, at):
                        contaminated.append(node)
            action = "CLUSTERED" if crossing or contaminated else "NONE"
        elif policy == SpilloverPolicy.EXCLUDE and crossing:
            reached = [n for n in (source, target) if n.in_holdout]
            if link.linkType == LinkType.GIFT and link.offer is not None:
                reached = [target]
            contaminated += [n for n in reached if _contaminate(n, link.linkType, at)]
            action = "CONTAMINATED"
        elif crossing:
            action = "RECORDED"
        forest.union(source.key, target.key)
    if contaminated:
        deltas[counters.CONTAMINATED] = len(contaminated)
        deltas[counters.by_link(counters.CONTAMINATED, lt)] = len(contaminated)
    deltas[counters.SPANNING] = forest.spanning_delta()
    root = forest.find(source.key)
    verdict = CohortVerdict(
        cohortId=forest.cohort_id, policy=policy, crossing=crossing, action=action,
        contaminatedUnits=[n.unit_id or n.key for n in contaminated],
        componentSpansBoth=root.spans or forest.find(target.key).spans,
    )
    return verdict, deltas, [n.key for n in contaminated]


def ingest(link: SpilloverLinkIn, actor: dict[str, str]) -> SpilloverResult:
    """Apply one link event to every targeted frozen cohort, exactly once per eventId."""
    cohort_ids = _target_cohorts(link)

    def run(uow: UnitOfWork) -> SpilloverResult:
        existing = uow.links.event(link.eventId)
        if existing is not None:
            stored = existing.get("result", {})
            return SpilloverResult.model_validate({**stored, "duplicate": True})
        docs: dict[str, CohortDoc] = {}
        for cid in cohort_ids:
            doc = uow.cohorts.get(cid)
            if doc is None:
                raise NotFound(f"cohort {cid} not found", code=ErrorCode.COHORT_NOT_FOUND)
            if not doc.get("frozen"):
                raise Conflict(f"cohort {cid} is not frozen; links apply to frozen cohorts only",
                               code=ErrorCode.COHORT_NOT_FROZEN)
            docs[cid] = doc
        at = now_text()
        forests = {cid: Forest(uow, cid) for cid in cohort_ids}
        heads = {cid: uow.ledger.cohort_head(cid) for cid in cohort_ids
                 if policy_for(docs[cid], link.linkType) != SpilloverPolicy.TRACK}
        staged = [(cid, *_apply_cohort(forests[cid], docs[cid], link, at)) for cid in cohort_ids]
        # every read happened above (find() reads lazily while deciding); writes start here
        verdicts = []
        for cid, verdict, deltas, contaminated_keys in staged:
            forests[cid].write()
            counters.increment(uow, cid, deltas)
            if cid in heads and (verdict.crossing or contaminated_keys):
                uow.ledger.append(
                    heads[cid], actor=actor, action=f"SPILLOVER_{verdict.action}",
                    subject={"type": "holdoutCohort", "id": cid},
                    payload={"eventId": link.eventId, "linkType": str(link.linkType), "policy": str(verdict.policy),
                             "contaminatedUnitKeys": contaminated_keys},
                )
            verdicts.append(verdict)
        result = SpilloverResult(eventId=link.eventId, duplicate=False,
                                 blocked=any(v.action == "BLOCKED" for v in verdicts), verdicts=verdicts)
        uow.links.record_event(link.eventId, {
            "eventId": link.eventId,
            "linkType": str(link.linkType),
            "sourceUnitId": link.sourceUnitId,
            "targetUnitId": link.targetUnitId,
            "clusterId": link.clusterId,
            "offer": link.offer.model_dump() if link.offer else None,
            "crossing": any(v.crossing for v in verdicts),
            "cohortIds": cohort_ids,
            "occurredAt": link.occurredAt,
            "recordedAt": at,
            "actor": actor,
            "result": result.model_dump(mode="json"),
        })
        return result

    result = atomically(run)
    if not result.blocked:  # every delivery lands it (after the commit); reads take each row once
        landing.land_links(link, [v.cohortId for v in result.verdicts], link.occurredAt or utc_now())
    return result


def raise_if_blocked(result: SpilloverResult) -> None:
    if result.blocked:
        raise Conflict("link refused: it would carry a treatment offer into a holdout",
                       code=ErrorCode.SPILLOVER_BLOCKED,
                       details={"eventId": result.eventId, "duplicate": result.duplicate,
                                "cohorts": [v.cohortId for v in result.verdicts if v.action == "BLOCKED"]})


def spanning_components(cohort_id: str, limit: int = 100) -> ComponentList:
    stored = reading()
    if stored.cohorts.get(cohort_id) is None:
        raise NotFound(f"cohort {cohort_id} not found", code=ErrorCode.COHORT_NOT_FOUND)
    comps = [Component(rootKey=key, size=int(d.get("size", 1)), holdoutMembers=int(d.get("holdout", 0)),
                       treatedMembers=int(d.get("treated", 0)))
             for key, d in stored.links.spanning(cohort_id, limit)]
    return ComponentList(cohortId=cohort_id, components=sorted(comps, key=lambda c: (-c.size, c.rootKey)))


def cluster_overrides(cohort_id: str, unit_ids: list[str]) -> dict[str, str]:
    """Sticky randomisation ids (CLUSTER / wallet cohorts) for the hot path: one batched read."""
    return randomisation_ids(cohort_id, unit_ids)
