"""Assign clients for `python -m bench load` (helper, not a benchmark).

Each client is its own process (spawned, so no gRPC state is inherited) that POSTs one unit at
a time to the `assign` HTTP function at a fixed pace for a bounded time and returns its
latencies. Open loop: a slow server does not slow the clients down, but a request is never
sent before the previous one of the same client returned (one connection per client).
"""

from __future__ import annotations

import random
import time
from typing import Any

import requests


def assign_client(base: str, token: str, known_units: list[str], seconds: float, rate: float,
                  client: int, seed: int) -> dict[str, Any]:
    """Returns {"latencies_ms": [...], "errors": n, "statuses": {code: n}, "sent": n, "seconds": s}.

    Four of five requests ask about a unit the KPI stream uses (already exposed: the pure
    decision path); the rest about units from this client's own bounded pool (first exposures,
    published once per unit)."""
    rng = random.Random(seed)
    own = [f"load-c{client}-u{i:04d}" for i in range(200)]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors = 0
    session = requests.Session()
    began = time.monotonic()
    deadline = began + seconds
    interval = 1.0 / rate if rate > 0 else 0.0
    next_at = began
    sent = 0
    while True:
        now = time.monotonic()
        if now >= deadline:
            break
        if next_at > now:
            time.sleep(min(next_at - now, deadline - now))
            continue
        next_at += interval
        unit = rng.choice(known_units) if known_units and rng.random() < 0.8 else rng.choice(own)
        body = {"unitId": unit, "attributes": {"region": "DE", "platform": rng.choice(["ios", "android"])}}
        t0 = time.perf_counter()
        try:
            resp = session.post(f"{base}/assign/", json=body, headers=headers, timeout=30)
            code = str(resp.status_code)
            if resp.status_code != 200:
                errors += 1
        except requests.RequestException:
            code, errors = "exception", errors + 1
        latencies.append((time.perf_counter() - t0) * 1000.0)
        statuses[code] = statuses.get(code, 0) + 1
        sent += 1
    session.close()
    return {"latencies_ms": latencies, "errors": errors, "statuses": statuses, "sent": sent,
            "seconds": time.monotonic() - began}
