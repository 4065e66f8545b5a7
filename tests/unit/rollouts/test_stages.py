"""Stage validation: every bad list is refused with its reason, in the core and through HTTP."""

from __future__ import annotations

import math

import pytest
from functions_framework import create_app

from functions.core.errors import Unprocessable
from functions.core.rollout.stages import DEFAULT_STAGES, control_share, exposure_status, validate_stages
from localdev.tokens import bearer
from tests.conftest import ROOT

BAD = [
    ([], "empty"),
    ([0.1, 0.1], "strictly increasing"),
    ([0.2, 0.1], "strictly increasing"),
    ([0.0, 0.1], "outside (0, 1]"),
    ([-0.1, 0.1], "outside (0, 1]"),
    ([0.1, 1.5], "outside (0, 1]"),
    ([0.1, math.nan], "not a finite number"),
    ([0.01, 0.6], "exceeds 1 - control share"),  # control holds 50%
]


@pytest.mark.parametrize(("stages", "reason"), BAD)
def test_bad_stage_lists_are_refused_with_the_reason(stages, reason):
    with pytest.raises(Unprocessable) as info:
        validate_stages(stages, control=0.5)
    assert info.value.code == "INVALID_STAGES"
    assert reason in info.value.details["reason"]


def test_good_lists_pass_including_the_default_and_the_exact_capacity():
    assert validate_stages(DEFAULT_STAGES, 0.5) == DEFAULT_STAGES
    assert validate_stages([0.2, 0.8], control_share([("c", 20), ("t", 80)])) == (0.2, 0.8)
    assert validate_stages([1.0], 0.0) == (1.0,)


def test_exposure_status_follows_the_bucket_layout():
    assert exposure_status(0.95, 0.1, 0.25, 0.5) == "CONTROL"
    assert exposure_status(0.05, 0.1, 0.25, 0.5) == "TREATMENT"
    assert exposure_status(0.2, 0.1, 0.25, 0.5) == "ROLLED_BACK"
    assert exposure_status(0.3, 0.1, 0.25, 0.5) == "NOT_EXPOSED"


@pytest.fixture(scope="module")
def client():
    return create_app(target="rollouts", source=str(ROOT / "main.py")).test_client()


# Shape errors answer before any read; the capacity check needs the experiment (integration tests).
@pytest.mark.parametrize(("stages", "reason"), [s for s in BAD if s[0] and not any(map(math.isnan, s[0]))
                                                and "control" not in s[1]])
def test_bad_stage_lists_get_422_with_the_reason_over_http(client, stages, reason):
    resp = client.put("/exp-1/plan", json={"stages": stages}, headers=bearer("pm-1", ["pm"]))
    err = resp.get_json()["error"]
    assert resp.status_code == 422, err
    assert err["code"] == "INVALID_STAGES" and reason in err["message"] and reason in err["details"]["reason"]


def test_empty_and_out_of_range_stage_lists_over_http(client):
    for stages in ([], [0.5, 2.0]):
        resp = client.put("/exp-1/plan", json={"stages": stages}, headers=bearer("pm-1", ["pm"]))
        assert resp.status_code == 422
        assert resp.get_json()["error"]["details"]["reason"]


def test_viewer_cannot_write_a_plan(client):
    resp = client.put("/exp-1/plan", json={"stages": [0.1]}, headers=bearer("v", ["viewer"]))
    assert resp.status_code == 403
