"""The pure checks behind the input limits (docs/limits.md), without an emulator."""

from __future__ import annotations

import pytest

from functions.models.common import MAX_FREE_DEPTH, MAX_SAFE_INTEGER, storable_problem
from tests.support.factories import deep


@pytest.mark.parametrize(("value", "path", "fragment"), [
    (deep(MAX_FREE_DEPTH + 1), "a" + ".a" * (MAX_FREE_DEPTH - 1), "nested deeper"),
    ({"x": [1, {"y": [[]]}]}, "x[1].y", "array directly inside an array"),
    ({"p": {"__name__": 1}}, "p", "reserved key"),
    ({"p": {"": 1}}, "p", "empty key"),
    ({"p": {"a\x1bb": 1}}, "p", "control character"),
    ({"n": [1, MAX_SAFE_INTEGER + 1]}, "n[1]", "integer beyond"),
    ({"n": -MAX_SAFE_INTEGER - 1}, "n", "integer beyond"),
    ({"f": float("inf")}, "f", "not finite"),
    ({"f": float("nan")}, "f", "not finite"),
    ({"o": object()}, "o", "unsupported value"),
])
def test_the_first_unstorable_part_is_named(value, path, fragment):
    problem = storable_problem(value)
    assert problem is not None
    assert problem[0] == path and fragment in problem[1], problem


def test_values_at_the_limits_pass():
    assert storable_problem(deep(MAX_FREE_DEPTH)) is None
    assert storable_problem({"n": [MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 1.7976931348623157e308, None, True]}) is None
    assert storable_problem({"_x_": {"a.b`c/d": [{"e": [1]}]}}) is None


def test_a_wide_value_is_checked_without_recursion():
    assert storable_problem({"k": [{"v": i} for i in range(100_000)]}) is None
    assert storable_problem([deep(3)] * 10 + [{"__x__": 1}], max_depth=5) == ("[10]", "reserved key '__x__' "
                                                                               "(Firestore refuses __.*__)")


def test_body_depth_counts_brackets_outside_strings_only():
    import json

    from functions.api.http.bodies import _max_depth

    for levels in (0, 1, 20, 21):
        assert _max_depth(json.dumps(deep(levels)).encode()) == levels
    tricky = json.dumps({"s": '{{{[[["\\', "l": [[[]]], "t": 'a\\"]]]]'}).encode()
    assert _max_depth(tricky) == 4


def test_a_surrogate_pair_is_text_and_a_lone_half_is_refused():
    import json

    from functions.api.http.bodies import _scan
    from functions.core.errors import BadRequest

    pair = b'{"a": "\\ud83d\\ude00"}'
    _scan(pair, json.loads(pair), 20)  # an escaped emoji is fine
    for raw in (b'{"a": "x\\ud800"}', b'{"\\uDFFF": 1}', b'[["\\udbff"]]'):
        with pytest.raises(BadRequest) as refused:
            _scan(raw, json.loads(raw), 20)
        assert refused.value.code == "INVALID_UNICODE"
