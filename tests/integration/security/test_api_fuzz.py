"""Property-based fuzzing of every HTTP function from its own OpenAPI document (schemathesis),
served by functions-framework with the emulators up, as each role: no 5xx, every response
matches the documented status codes, content type and schema; and afterwards the ledger
(seeded with a running experiment so there is history to damage) still verifies.

Bounded here (FUZZ_EXAMPLES per operation, default 8); `python -m bench fuzz` runs the long version.
"""

from __future__ import annotations

import os

import pytest

from functions.services.ledger.verification import verify_all
from functions.triggers import API_FUNCTIONS
from tests.support.factories import running_experiment
from tests.support.fuzz import ROLES, fuzz_function

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
HOSTILE = int(os.environ.get("FUZZ_HOSTILE", "4"))  # hostile cases per operation (see tests/support/fuzz.py)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", API_FUNCTIONS)
def test_fuzz_every_route_as_every_role(emulators, name, role):
    running_experiment()
    before = verify_all()
    assert before["ok"] and before["entries"] > 0, before
    assert fuzz_function(name, role, EXAMPLES, HOSTILE) > 0
    after = verify_all()
    assert after["ok"], after
    assert after["entries"] >= before["entries"]
