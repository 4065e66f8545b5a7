"""Exposure through the real assignment core, 100,000 units across every stage: raising the stage
only adds treatment units, no unit ever changes variant, control never changes, and a rollback
marks exactly the units between the new stage and the highest stage reached."""

from __future__ import annotations

import numpy as np
import pytest

from functions.core.assignment.decision import (
    STATUS_ORDER,
    AssignmentConfig,
    ExperimentConfig,
    Status,
    decide_columns,
    expected_split,
)
from functions.core.assignment.hashing import bucket_array
from functions.core.rollout.stages import DEFAULT_STAGES, control_share, validate_stages

UNITS = [f"user-{i}" for i in range(100_000)]
ASSIGNED, ROLLED_BACK, NOT_EXPOSED = (STATUS_ORDER.index(s) for s in (Status.ASSIGNED, Status.ROLLED_BACK,
                                                                      Status.NOT_EXPOSED))


def run(variants, stage, max_stage=None, status="ACTIVE"):
    cfg = ExperimentConfig("exp-m", "salt-m", variants, rollout_stage=stage, max_stage_reached=max_stage,
                           rollout_status=status)
    cols = decide_columns(AssignmentConfig(experiments=(cfg,)), UNITS)
    return cols.status[0], cols.variant[0]


@pytest.mark.parametrize("variants", [(("control", 50.0), ("treatment", 50.0)),
                                      (("control", 40.0), ("a", 30.0), ("b", 30.0))])
def test_raising_the_stage_only_adds_treatment_and_never_changes_a_variant(variants):
    stages = validate_stages(DEFAULT_STAGES, control_share(variants))
    previous_status, previous_variant = None, None
    for stage in stages:
        status, variant = run(variants, stage)
        treated = (status == ASSIGNED) & (variant > 0)
        control = (status == ASSIGNED) & (variant == 0)
        assert not (status == ROLLED_BACK).any()
        share = expected_split(variants, stage)
        # observed shares match the stage's expected split (binomial, 5 sigma)
        for k, (key, _) in enumerate(variants):
            p = share[key]
            observed = ((status == ASSIGNED) & (variant == k)).mean()
            assert abs(observed - p) <= 5 * np.sqrt(p * (1 - p) / len(UNITS)) + 1e-12, (stage, key)
        if previous_status is not None:
            was_treated = (previous_status == ASSIGNED) & (previous_variant > 0)
            was_control = (previous_status == ASSIGNED) & (previous_variant == 0)
            assert treated[was_treated].all()  # nobody leaves treatment
            assert (variant[was_treated] == previous_variant[was_treated]).all()  # nor changes arm
            assert (control == was_control).all()  # control is the same set at every stage
            assert treated.sum() > was_treated.sum()  # and the stage really added units
        previous_status, previous_variant = status, variant


def test_rollback_and_abort_mark_exactly_the_units_that_were_exposed_before():
    variants = (("control", 50.0), ("treatment", 50.0))
    b = bucket_array(UNITS, "salt-m")
    status, variant = run(variants, 0.10, max_stage=0.25)
    assert ((status == ROLLED_BACK) == ((b >= 0.10) & (b < 0.25))).all()
    assert ((status == ASSIGNED) & (variant == 1) == (b < 0.10)).all()
    assert ((status == ASSIGNED) & (variant == 0) == (b >= 0.5)).all()
    assert ((status == NOT_EXPOSED) == ((b >= 0.25) & (b < 0.5))).all()
    aborted, _ = run(variants, 0.10, max_stage=0.25, status="ABORTED")
    assert ((aborted == ROLLED_BACK) == (b < 0.25)).all()
    assert not ((aborted == ASSIGNED) & (b < 0.5)).any()
