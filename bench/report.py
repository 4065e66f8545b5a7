"""The one result format every benchmark prints last."""

from __future__ import annotations

import json
from typing import Any


def emit(
    name: str,
    unit: str,
    ours: float,
    peers: dict[str, float],
    params: dict[str, Any],
    higher_is_better: bool = True,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Print the result line; ratio_vs > 1 always means ours is better than that peer."""
    ratio_vs: dict[str, float | None] = {}
    for peer, value in peers.items():
        if not value or not ours:
            ratio_vs[peer] = None
        else:
            ratio_vs[peer] = round(ours / value if higher_is_better else value / ours, 4)
    result: dict[str, Any] = {
        "bench": name,
        "unit": unit,
        "ours": ours,
        "peers": peers,
        "ratio_vs": ratio_vs,
        "params": params,
    }
    if extra:
        result.update(extra)
    print(json.dumps(result, sort_keys=False), flush=True)
    return result
