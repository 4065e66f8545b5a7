"""The OpenAPI 3.1 document of one HTTP function, built from its routes' models: every route
documents its success schema (a JSON model, or a string for HTML/CSV/NDJSON), its parameters,
its body and the coded error envelope for each refusal it can give."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from functions.api.http.responses import JSON
from functions.models.common import ID_PATTERN, ErrorEnvelope

if TYPE_CHECKING:
    from functions.api.http.routing import Route

ERROR_STATUSES = ["400", "404", "405", "409", "413", "422", "503"]
AUTH_STATUSES = ["401", "403"]


def _operation_id(function: str, route: Route) -> str:
    name = route.handler.__name__
    if name == "<lambda>":
        return f"{function}_op_{route.method.lower()}_" + re.sub(r"\W+", "_", route.path).strip("_")
    return f"{function}_{name}_{route.method.lower()}"


def document(function: str, title: str, description: str, routes: Sequence[Route]) -> dict[str, Any]:
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorEnvelope, "serialization")]
    for r in routes:
        if r.body:
            models.append((r.body, "validation"))
        if r.response:
            models.append((r.response, "serialization"))
        if r.query:
            models.append((r.query, "validation"))
    keys, defs = models_json_schema(models, ref_template="#/components/schemas/{model}")
    schemas = defs.get("$defs", {})
    error_ref = keys[(ErrorEnvelope, "serialization")]

    paths: dict[str, Any] = {}
    for r in routes:
        op: dict[str, Any] = {"operationId": _operation_id(function, r), "summary": r.summary, "responses": {}}
        parameters = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string", "pattern": ID_PATTERN}}
            for p in re.findall(r"\{(\w+)\}", r.path)
        ]
        if r.query:
            qschema = schemas.get(r.query.__name__, {})
            required = set(qschema.get("required", []))
            for name, prop in qschema.get("properties", {}).items():
                parameters.append({"name": name, "in": "query", "required": name in required, "schema": prop})
        if parameters:
            op["parameters"] = parameters
        if r.body:
            op["requestBody"] = {"required": True,
                                 "content": {JSON: {"schema": keys[(r.body, "validation")]}}}
        op["responses"][str(r.status)] = {
            "description": "success",
            "content": {ct: {"schema": keys[(r.response, "serialization")] if r.response else {"type": "string"}}
                        for ct in r.content_types},
        }
        for code in ERROR_STATUSES + ([] if r.public else AUTH_STATUSES):
            op["responses"][code] = {"description": "coded error", "content": {JSON: {"schema": error_ref}}}
        if not r.public:
            op["security"] = [{"firebaseIdToken": []}]
        openapi_path = f"/{function}{r.path}" if r.path != "/" else f"/{function}"
        paths.setdefault(openapi_path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1.0.0", "description": description},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"firebaseIdToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }
