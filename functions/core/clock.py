"""Time of day: the one place that reads the wall clock, and the formats times are stored in.

Every module asks `utc_now()` (a test guard refuses `datetime.now(`/`datetime.utcnow(`/
`time.time(` anywhere else), so all times are aware UTC and one seam exists to fake the clock.
Durations use `time.monotonic()`/`perf_counter()`, which are not time of day and stay where they are.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def utc_now() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(UTC)


def timestamp_text(moment: datetime) -> str:
    """The stored time format (UTC, microseconds, `Z`): fixed width, so strings compare as times.
    Naive values are UTC."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def now_text() -> str:
    """`timestamp_text(utc_now())`: the ledger's and the cohorts' `at` fields."""
    return timestamp_text(utc_now())


def parse_time(value: Any) -> datetime | None:
    """A stored or delivered time (datetime or ISO 8601 text, `Z` allowed) as an aware datetime;
    None for anything else. Naive values are UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def iso_text(value: Any) -> Any:
    """Stored timestamps leave the API as ISO 8601, like every other time we return."""
    return value.isoformat() if isinstance(value, datetime) else value
