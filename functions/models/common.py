"""Shared model pieces: strict base, safe identifiers, the error envelope."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

# Ids become Firestore document ids: no '/', no '__x__' reserved names, no '.' / '..', bounded.
ID_PATTERN = r"^[A-Za-z0-9._:@+=-]{1,128}$"


_ID = re.compile(ID_PATTERN)


def is_reserved_id(value: str) -> bool:
    return value in {".", ".."} or (value.startswith("__") and value.endswith("__"))


def is_document_id(value: str) -> bool:
    """What any id from outside must satisfy before it names a Firestore document."""
    return bool(_ID.fullmatch(value)) and not is_reserved_id(value)


def _document_id(value: str) -> str:
    if is_reserved_id(value):
        raise ValueError("reserved Firestore id")
    return value


Id = Annotated[str, StringConstraints(pattern=ID_PATTERN), AfterValidator(_document_id)]
# External unit ids (users, devices, wallets) may be any printable text; they are hashed,
# never used as a path segment directly.
UnitId = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
Text = Annotated[str, StringConstraints(max_length=5000)]

MAX_FUTURE_SKEW = timedelta(minutes=10)


def iso_text(value: Any) -> Any:
    """Stored timestamps leave the API as ISO 8601, like every other time we return."""
    return value.isoformat() if isinstance(value, datetime) else value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


FiniteFloat = Annotated[float, AfterValidator(_finite)]


def _not_future(value: datetime) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if value > datetime.now(UTC) + MAX_FUTURE_SKEW:
        raise ValueError("timestamp is in the future")
    return value


PastTimestamp = Annotated[datetime, AfterValidator(_not_future)]


class StrictModel(BaseModel):
    """Unknown fields are rejected (named in the 422) rather than silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, populate_by_name=True)


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = Field(default_factory=dict)


class ErrorEnvelope(BaseModel):
    error: ErrorBody

