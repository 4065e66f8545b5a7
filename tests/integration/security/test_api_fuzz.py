"""Property-based fuzzing of every HTTP function from its own OpenAPI document (schemathesis),
served by functions-framework with the emulators up, as each role: no 5xx, every response
matches the documented status codes, content type and schema.

Bounded here (FUZZ_EXAMPLES per operation, default 8); `python -m bench fuzz` runs the long version.
"""

from __future__ import annotations

import os

import pytest

from functions.triggers import HTTP_FUNCTIONS
from tests.support.fuzz import ROLES, fuzz_function

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", HTTP_FUNCTIONS)
def test_fuzz_every_route_as_every_role(emulators, name, role):
    assert fuzz_function(name, role, EXAMPLES) > 0
