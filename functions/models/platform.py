"""Answers of the routes every HTTP function has: liveness, the caller, the OpenAPI document."""

from __future__ import annotations

from typing import Any

from functions.models.common import StrictModel


class Liveness(StrictModel):
    status: str


class Caller(StrictModel):
    uid: str
    roles: list[str]


class OpenApiInfo(StrictModel):
    title: str
    version: str
    description: str


class OpenApiDocument(StrictModel):
    openapi: str
    info: OpenApiInfo
    paths: dict[str, dict[str, dict[str, Any]]]
    components: dict[str, dict[str, Any]]
