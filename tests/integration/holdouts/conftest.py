"""Helpers for the holdouts integration tests: tokens, a frozen cohort, a running experiment."""

from __future__ import annotations

import pytest

from functions.adapters.firestore import OFFER_EXPERIMENTS, db
from functions.services.holdouts import assign, config
from localdev.tokens import bearer

PM = bearer("pm-1", ["pm"])
VIEWER = bearer("viewer-1", ["viewer"])
SERVICE = bearer("svc-1", ["service"])


@pytest.fixture(autouse=True)
def _fresh_caches():
    config.invalidate()
    assign.forget_sent()
    yield
    config.invalidate()


@pytest.fixture
def holdouts(function_client):
    return function_client("holdouts")


def make_cohort(client, *, percentage=10.0, policies=None, freeze=True, **extra) -> dict:
    body = {"name": "global holdout", "percentage": percentage, "salt": extra.pop("salt", "salt-1"), **extra}
    if policies:
        body["spilloverPolicies"] = policies
    resp = client.post("/cohorts", json=body, headers=PM)
    assert resp.status_code == 201, resp.get_json()
    cohort = resp.get_json()
    if freeze:
        resp = client.post(f"/cohorts/{cohort['id']}/freeze", json={}, headers=PM)
        assert resp.status_code == 200, resp.get_json()
        cohort = resp.get_json()
    config.invalidate()
    return cohort


def seed_experiment(experiment_id: str, cohort_id: str, *, state="RUNNING", stage=1.0, **extra) -> dict:
    doc = {
        "state": state,
        "salt": f"exp-salt-{experiment_id}",
        "hashVersion": 1,
        "variants": [{"key": "control", "weight": 0.5}, {"key": "discount", "weight": 0.5}],
        "targeting": [],
        "holdoutCohortId": cohort_id,
        "layer": "pricing",
        "layerRange": [0.0, 1.0],
        "offerType": "PRICE_CHANGE",
        "restrictedRegions": [],
        "rollout": {"stage": stage, "maxStageReached": stage, "status": "ACTIVE"},
        **extra,
    }
    db().collection(OFFER_EXPERIMENTS).document(experiment_id).set(doc)
    config.invalidate()
    return doc
