"""Eligibility and targeting rules over unit attributes.

A rule list is a conjunction: every rule must hold. Rule shape:
    {"attribute": "region", "op": "in", "value": ["DE", "FR"]}
ops: eq, neq, in, not_in, gt, gte, lt, lte, exists, not_exists. A unit that lacks the
attribute fails every op except `not_exists` (unknown is never silently eligible).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from functions.core.errors import ErrorCode, Unprocessable

_MISSING = object()
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "neq": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
    "in": lambda a, b: a in b,
    "not_in": lambda a, b: a not in b,
}
OPS = (*_COMPARE, "exists", "not_exists")


@dataclass(frozen=True)
class Rule:
    attribute: str
    op: str
    value: Any = None

    def matches(self, attributes: Mapping[str, Any]) -> bool:
        actual = attributes.get(self.attribute, _MISSING)
        if self.op == "not_exists":
            return actual is _MISSING
        if actual is _MISSING:
            return False
        if self.op == "exists":
            return True
        try:
            return bool(_COMPARE[self.op](actual, self.value))
        except TypeError:  # e.g. "3" > 2: a type mismatch never qualifies
            return False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"attribute": self.attribute, "op": self.op}
        if self.op not in {"exists", "not_exists"}:
            value = self.value
            out["value"] = sorted(value, key=lambda v: (type(v).__name__, v)) if isinstance(value, frozenset) else value
        return out


@dataclass(frozen=True)
class Rules:
    rules: tuple[Rule, ...] = ()

    def matches(self, attributes: Mapping[str, Any] | None) -> bool:
        attrs = attributes or {}
        return all(rule.matches(attrs) for rule in self.rules)

    def to_list(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.rules]


ALWAYS = Rules()


def compile_rules(raw: Sequence[Mapping[str, Any]] | None) -> Rules:
    """Validate and freeze a rule list; bad rules are a 422 naming the rule."""
    compiled = []
    for index, item in enumerate(raw or []):
        if not isinstance(item, Mapping):
            raise Unprocessable(f"rule {index} is not an object", code=ErrorCode.INVALID_RULE, details={"index": index})
        attribute, op, value = item.get("attribute"), item.get("op"), item.get("value")
        if not isinstance(attribute, str) or not attribute or len(attribute) > 100:
            raise Unprocessable(f"rule {index}: attribute must be a non-empty string", code=ErrorCode.INVALID_RULE,
                                details={"index": index})
        if op not in OPS:
            raise Unprocessable(f"rule {index}: unknown op {op!r}", code=ErrorCode.INVALID_RULE,
                                details={"index": index, "ops": list(OPS)})
        if op in {"in", "not_in"}:
            if not isinstance(value, list):
                raise Unprocessable(f"rule {index}: {op} needs a list value", code=ErrorCode.INVALID_RULE,
                                    details={"index": index})
            try:
                value = frozenset(value)
            except TypeError as exc:
                raise Unprocessable(f"rule {index}: list values must be scalars", code=ErrorCode.INVALID_RULE,
                                    details={"index": index}) from exc
        elif op in {"gt", "gte", "lt", "lte"} and (not isinstance(value, int | float) or isinstance(value, bool)):
            raise Unprocessable(f"rule {index}: {op} needs a number",
                                code=ErrorCode.INVALID_RULE, details={"index": index})
        elif op in {"eq", "neq"} and not isinstance(value, str | int | float | bool):
            raise Unprocessable(f"rule {index}: {op} needs a scalar",
                                code=ErrorCode.INVALID_RULE, details={"index": index})
        compiled.append(Rule(attribute, op, value if op not in {"exists", "not_exists"} else None))
    return Rules(tuple(compiled))
