"""Every legal and every illegal transition of the lifecycle state machine."""

from __future__ import annotations

import itertools

import pytest

from functions.core.errors import Conflict
from functions.core.lifecycle import TERMINAL, TRANSITIONS, Action, State, next_state

LEGAL = {
    ("DRAFT", "SUBMIT"): "PENDING_APPROVAL", ("DRAFT", "EDIT"): "DRAFT", ("DRAFT", "CANCEL"): "CANCELLED",
    ("PENDING_APPROVAL", "APPROVE"): "APPROVED", ("PENDING_APPROVAL", "REJECT"): "DRAFT",
    ("PENDING_APPROVAL", "EDIT"): "PENDING_APPROVAL", ("PENDING_APPROVAL", "CANCEL"): "CANCELLED",
    ("APPROVED", "START"): "RUNNING", ("APPROVED", "EDIT"): "PENDING_APPROVAL", ("APPROVED", "CANCEL"): "CANCELLED",
    ("RUNNING", "PAUSE"): "PAUSED", ("RUNNING", "KILL"): "KILLED", ("RUNNING", "COMPLETE"): "COMPLETED",
    ("PAUSED", "RESUME"): "RUNNING", ("PAUSED", "KILL"): "KILLED", ("PAUSED", "COMPLETE"): "COMPLETED",
}


@pytest.mark.parametrize(("state", "action"), list(itertools.product(State, Action)))
def test_every_pair(state, action):
    expected = LEGAL.get((state.value, action.value))
    if expected:
        assert next_state(state.value, action.value) == State(expected)
    else:
        with pytest.raises(Conflict) as err:
            next_state(state.value, action.value)
        assert err.value.code == "ILLEGAL_TRANSITION"
        assert err.value.details["state"] == state.value


def test_table_matches_the_documented_diagram_exactly():
    assert {(s.value, a.value): t.value for (s, a), t in TRANSITIONS.items()} == LEGAL


def test_terminal_states_have_no_way_out():
    assert not [k for k in TRANSITIONS if k[0] in TERMINAL]


def test_unknown_names_are_conflicts_not_crashes():
    with pytest.raises(Conflict):
        next_state("SOMETHING", "START")
