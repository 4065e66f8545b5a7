"""Fuzz one HTTP function from its OpenAPI document as one role (used by the bounded test and
`python -m bench fuzz`)."""

from __future__ import annotations

import schemathesis
from functions_framework import create_app
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from localdev.targets import MAIN
from localdev.tokens import bearer

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
ROLES = ["viewer", "pm", "approver", "operator", "admin", "service", "user"]


def fuzz_function(name: str, role: str, examples: int) -> int:
    """Run every operation of one function as one role; returns how many cases ran."""
    app = create_app(target=name, source=str(MAIN))
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
