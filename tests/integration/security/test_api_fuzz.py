"""Property-based fuzzing of every HTTP function from its own OpenAPI document (schemathesis),
served by functions-framework with the emulators up, as each role: no 5xx, every response
matches the documented status codes, content type and schema.

Bounded here (FUZZ_EXAMPLES per operation, default 8); `python -m bench fuzz` runs the long version.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from functions_framework import create_app
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from functions.triggers import HTTP_FUNCTIONS
from localdev.tokens import bearer
from tests.conftest import ROOT

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
ROLES = ["viewer", "pm", "approver", "operator", "admin", "service", "user"]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))


def fuzz_function(name: str, role: str, examples: int) -> int:
    """Run every operation of one function as one role; returns how many cases ran."""
    app = create_app(target=name, source=str(ROOT / "main.py"))
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    headers = bearer(f"fuzz-{role}", [role])
    ran = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            nonlocal ran
            ran += 1
            case.call_and_validate(headers={**headers, **(case.headers or {})}, checks=CHECKS)

        check()
    return ran


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", HTTP_FUNCTIONS)
def test_fuzz_every_route_as_every_role(emulators, name, role):
    assert fuzz_function(name, role, EXAMPLES) > 0
