"""Timestamps and money for people who do not read JSON, one format each (UTC ISO 8601 with a
trailing Z everywhere); verdict sentences and reasons come from `functions.core.wording`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from functions.config import settings
from functions.core.clock import parse_time


def when(value: Any) -> str:
    """One timestamp format for the whole console: 2026-11-30T10:46:45Z."""
    moment = parse_time(value)
    if moment is None:
        return "" if value is None else str(value)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def money(value: float | None, currency: str) -> str:
    if value is None:
        return "n/a"
    sign = "-" if value < 0 else "+"
    return f"{sign}{abs(value):,.0f} {currency}"


def monthly_impact(estimate: dict[str, Any] | None, units_per_day: float | None,
                   rate: float = 1.0) -> dict[str, float] | None:
    """Per-user difference times the users the experiment sees per month at current traffic,
    times `rate` (landed values are in the deployment's base currency; see `Money.rate`)."""
    if not estimate or estimate.get("diff") is None or not units_per_day:
        return None
    scale = units_per_day * 30 * rate
    ci = estimate.get("diffCi") or [None, None]
    return {"value": estimate["diff"] * scale, "low": ci[0] * scale if ci[0] is not None else None,
            "high": ci[1] * scale if ci[1] is not None else None, "unitsPerMonth": units_per_day * 30}


@dataclass(frozen=True)
class Money:
    """The currency a page shows an experiment's money in, and the rate from the base currency.

    KPI values land in the deployment's base currency (`BASE_CURRENCY`, converted with
    `CURRENCY_RATES` on the way in); an experiment priced in another currency (its offer config's
    or its variants' `currency`) is shown in that one, converted back with the same rates."""

    currency: str
    rate: float = 1.0

    @classmethod
    def base(cls) -> Money:
        return cls(settings().base_currency)

    @classmethod
    def of(cls, definition: Mapping[str, Any]) -> Money:
        conf = settings()
        offers = [definition.get("offerConfig") or {}] + [v.get("offer") or {} for v in
                                                           definition.get("variants") or []]
        wanted = next((str(o["currency"]) for o in offers if isinstance(o, Mapping) and o.get("currency")), None)
        rates = conf.currency_rates
        if not wanted or wanted == conf.base_currency or not rates.get(wanted) or not rates.get(conf.base_currency):
            return cls(conf.base_currency)
        return cls(wanted, rates[conf.base_currency] / rates[wanted])
