"""Shared model pieces: strict base, safe identifiers, storable free-form values, bounded
timestamps, the error envelope. Every limit here is documented in docs/limits.md."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from functions.core.clock import utc_now

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
# Display strings end up in logs, CSV and HTML: no C0/C1 control characters (NUL, ESC, ...);
# free text may hold tab, newline and carriage return.
NO_CONTROL = r"^[^\x00-\x1f\x7f-\x9f]*$"
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
UnitId = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f-\x9f]+$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True, pattern=NO_CONTROL)]
Text = Annotated[str, StringConstraints(max_length=5000, pattern=TEXT_PATTERN)]

MAX_FUTURE_SKEW = timedelta(minutes=10)


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


FiniteFloat = Annotated[float, AfterValidator(_finite)]


# Firestore stores 0001-01-01..9999-12-31 UTC; a day's margin each side keeps any offset
# (+-14:00) and any day of arithmetic on an accepted time from overflowing.
TIMESTAMP_MIN = datetime(1, 1, 2, tzinfo=UTC)
TIMESTAMP_MAX = datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)


def _in_range(value: datetime) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not TIMESTAMP_MIN <= utc <= TIMESTAMP_MAX:
        raise ValueError(f"timestamp outside {TIMESTAMP_MIN.isoformat()} .. {TIMESTAMP_MAX.isoformat()} (UTC)")
    return value


def _not_future(value: datetime) -> datetime:
    if value > utc_now() + MAX_FUTURE_SKEW:
        raise ValueError("timestamp is in the future")
    return value


Timestamp = Annotated[datetime, AfterValidator(_in_range)]
PastTimestamp = Annotated[datetime, AfterValidator(_in_range), AfterValidator(_not_future)]

# -- free-form values (offers, offer config, targeting rules, attributes) ---------------------
# Firestore refuses a value nested deeper than 20 maps/arrays (counted from the top-level field),
# an array directly inside an array, a field name of `__.*__`, an empty field name, integers
# beyond int64, strings that are not UTF-8 and documents over 1 MiB. A free-form field sits
# inside the documents that store it (deepest: a ledger entry's payload.definition.variants[i]
# .offer, 4 levels; 2 spare), so its own depth budget is what remains. Numbers must survive the
# ledger's canonical JSON (RFC 8785: integers within +-(2^53-1)) and be finite (1e309 parses as
# infinity).
FIRESTORE_MAX_DEPTH = 20
DOCUMENT_WRAPPING_DEPTH = 6
MAX_FREE_DEPTH = FIRESTORE_MAX_DEPTH - DOCUMENT_WRAPPING_DEPTH
MAX_KEY_BYTES = 256
# Firestore also refuses a field path (map keys joined by '.', back-quoted when special, restarted
# inside arrays) over 1,500 bytes; the documents' own prefix is short, so a free-form value gets 1 KiB.
MAX_KEY_PATH_BYTES = 1024
MAX_FREE_BYTES = 32 * 1024
MAX_DEFINITION_BYTES = 256 * 1024
MAX_SAFE_INTEGER = 2**53 - 1
_RESERVED_KEY = re.compile(r"^__.*__$", re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def json_size(value: Any) -> int:
    """UTF-8 bytes of the compact JSON text: what a free-form value costs in a document."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode())


def _key_problem(key: Any) -> str | None:
    if not isinstance(key, str) or not key:
        return "empty key"
    if _RESERVED_KEY.match(key):
        return f"reserved key {key[:40]!r} (Firestore refuses __.*__)"
    if _CONTROL.search(key):
        return "control character in a key"
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        return f"key longer than {MAX_KEY_BYTES} bytes"
    return None


def _value_problem(value: Any) -> str | None:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return None
    if isinstance(value, int):
        return None if abs(value) <= MAX_SAFE_INTEGER else "integer beyond +-(2^53-1)"
    if isinstance(value, float):
        return None if math.isfinite(value) else "number is not finite (too large)"
    if isinstance(value, dict | list):
        return None
    return f"unsupported value of type {type(value).__name__}"


def _path_cost(key: str) -> int:
    """Bytes a key adds to a Firestore field path: itself, a dot, back-quotes and escapes."""
    return len(key.encode("utf-8", "surrogatepass")) + key.count("`") + key.count("\\") + 3


def storable_problem(value: Any, max_depth: int = MAX_FREE_DEPTH) -> tuple[str, str] | None:
    """The first reason (path, message) Firestore or the ledger would refuse `value`, or None.

    Iterative, and stops at the first problem, so hostile input cannot make it expensive."""
    stack: list[tuple[Any, str, int, int]] = [(value, "", 1, 0)]
    while stack:
        item, path, depth, path_bytes = stack.pop()
        if path_bytes > MAX_KEY_PATH_BYTES:
            return path, f"nested keys longer than {MAX_KEY_PATH_BYTES} bytes together"
        problem = _value_problem(item)
        if problem:
            return path or "(value)", problem
        if isinstance(item, dict):
            if depth > max_depth:
                return path or "(value)", f"nested deeper than {max_depth} levels"
            for key, child in item.items():
                problem = _key_problem(key)
                if problem:
                    return path or "(value)", problem
                stack.append((child, f"{path}.{key}" if path else str(key), depth + 1, path_bytes + _path_cost(key)))
        elif isinstance(item, list):
            if depth > max_depth:
                return path or "(value)", f"nested deeper than {max_depth} levels"
            if any(isinstance(child, list) for child in item):
                return path or "(value)", "array directly inside an array (Firestore refuses it)"
            stack.extend((child, f"{path}[{i}]", depth + 1, 0) for i, child in enumerate(item))
    return None


def _storable(value: Any) -> Any:
    problem = storable_problem(value)
    if problem:
        path, message = problem
        raise ValueError(f"{message} at {path}")
    size = json_size(value)
    if size > MAX_FREE_BYTES:
        raise ValueError(f"{size} bytes of JSON; the limit is {MAX_FREE_BYTES}")
    return value


# A free-form JSON object that Firestore and the ledger can store as given.
JsonMap = Annotated[dict[str, Any], AfterValidator(_storable)]


class StrictModel(BaseModel):
    """Unknown fields are rejected (named in the 422) rather than silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, populate_by_name=True)


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = Field(default_factory=dict)


class ErrorEnvelope(BaseModel):
    error: ErrorBody



class Actor(StrictModel):
    """Who did something, as recorded (`Principal.to_dict`)."""

    uid: str
    role: str
