"""Query parameters are typed from their Python values, the same way for both engines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from functions.adapters.metric_store import QueryRejected
from functions.adapters.metric_store.bigquery_store import query_parameter
from functions.adapters.metric_store.port import param_type


@pytest.mark.parametrize(("value", "expected"), [
    ("x", "STRING"), (True, "BOOL"), (False, "BOOL"), (0, "INT64"), (-(2**63), "INT64"), (1.5, "FLOAT64"),
    (datetime(2026, 1, 1, tzinfo=UTC), "TIMESTAMP"), (["a"], "ARRAY<STRING>"), ((1, 2), "ARRAY<INT64>"),
    ([1, 2.5], "ARRAY<FLOAT64>"), ([True], "ARRAY<BOOL>"), ([], "ARRAY<STRING>"),
    ([datetime(2026, 1, 1)], "ARRAY<TIMESTAMP>"),
])
def test_each_python_value_gets_its_bigquery_type(value, expected):
    assert param_type("p", value) == expected


@pytest.mark.parametrize("value", [None, [None], ["a", None], [1, "a"], [True, 1], [[1]], {"a": 1}, b"x", object()])
def test_a_value_without_a_bigquery_type_is_a_rejected_query(value):
    with pytest.raises(QueryRejected, match="@p"):
        param_type("p", value)


def test_bigquery_parameters_carry_type_and_utc_values():
    cet = timezone(timedelta(hours=1))
    stamp = query_parameter("t", datetime(2026, 1, 1, 10, tzinfo=cet)).to_api_repr()
    assert stamp["parameterType"] == {"type": "TIMESTAMP"}
    assert stamp["parameterValue"]["value"].startswith("2026-01-01 09:00:00")  # the instant, in UTC
    naive = query_parameter("t", datetime(2026, 1, 1, 10)).to_api_repr()
    assert naive["parameterValue"]["value"].startswith("2026-01-01 10:00:00")  # naive is taken as UTC
    mixed = query_parameter("xs", [1, 2.5]).to_api_repr()
    assert mixed["parameterType"] == {"type": "ARRAY", "arrayType": {"type": "FLOAT64"}}
    values = [v["value"] for v in mixed["parameterValue"]["arrayValues"]]
    assert values == [1.0, 2.5] and all(type(v) is float for v in values)
    flag = query_parameter("b", True).to_api_repr()
    assert flag["parameterType"] == {"type": "BOOL"} and flag["parameterValue"]["value"] == "true"
