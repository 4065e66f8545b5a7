"""Rows are checked against the landing schema the same way for both engines."""

from __future__ import annotations

import enum
from datetime import UTC, datetime

import pytest

from functions.adapters.metric_store import AppendRejected, schema


class Status(enum.StrEnum):
    ASSIGNED = "ASSIGNED"


class Stamp(datetime):
    """A datetime subclass, as some libraries hand out."""


def _exposure(**changes) -> dict:
    row = {"event_id": "e1", "experiment_id": "x", "unit_id": "u", "status": "ASSIGNED", "variant": "control",
           "analytics_consent": True, "exposed_at": datetime(2026, 1, 1, tzinfo=UTC),
           "received_at": datetime(2026, 1, 1, tzinfo=UTC)}
    return {**row, **changes}


@pytest.mark.parametrize("changes", [{}, {"status": Status.ASSIGNED}, {"exposed_at": Stamp(2026, 1, 1, tzinfo=UTC)},
                                     {"analytics_consent": False}])
def test_rows_of_the_right_types_pass(changes):
    schema.check_rows(schema.EXPOSURES, [_exposure(**changes)])


def test_an_int_is_a_float64_but_a_bool_is_not():
    row = {"event_id": "k", "unit_id": "u", "metric": "m", "value": 3, "event_time": datetime(2026, 1, 1, tzinfo=UTC),
           "received_at": datetime(2026, 1, 1, tzinfo=UTC)}
    schema.check_rows(schema.KPI_EVENTS, [row])
    with pytest.raises(AppendRejected, match="value must be FLOAT64, got bool"):
        schema.check_rows(schema.KPI_EVENTS, [{**row, "value": False}])


@pytest.mark.parametrize(("changes", "message"), [
    ({"analytics_consent": 1}, "analytics_consent must be BOOL, got int"),
    ({"analytics_consent": None}, "analytics_consent is required"),
    ({"status": b"ASSIGNED"}, "status must be STRING, got bytes"),
    ({"exposed_at": 1_700_000_000}, "exposed_at must be TIMESTAMP, got int"),
    ({"__proto__": "x"}, r"unknown column\(s\) \['__proto__'\]"),
])
def test_the_first_bad_row_is_named(changes, message):
    with pytest.raises(AppendRejected, match=rf"exposures row 2: {message}"):
        schema.check_rows(schema.EXPOSURES, [_exposure(), _exposure(), _exposure(**changes)])
