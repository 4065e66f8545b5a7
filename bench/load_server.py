"""The served system for `python -m bench load`, in its own process (helper, not a benchmark).

Serves every function of main.py exactly as `localdev.run` does (localdev.router's app, the
push subscriptions of localdev.pubsub_setup, the Firestore trigger bridge), wrapped in a
metering WSGI middleware that records, per function, the status and duration of every request
and, for Pub/Sub pushes, the message id of every delivery. `GET /_load/stats` returns them, so
the bench can tell when every published KPI message has been acknowledged (drained), how long
each sweep took and how often Pub/Sub redelivered.

    python -m bench.load_server --port P [--max-seconds 3600]

It expects the emulator variables (and TOPIC_PREFIX) in its environment, and exits on SIGTERM
or after --max-seconds.
"""

from __future__ import annotations

import argparse
import io
import json
import signal
import sys
import threading
import time
from collections import defaultdict
from typing import Any

from functions.adapters.metric_store import landing

PUSH_FUNCTIONS = ("kpi_events", "exposures", "sweep", "fraud_signals", "spillover_events")
STATS_PATH = "/_load/stats"
KEEP_DURATIONS = 50_000  # per function; bounded memory


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


class Meter:
    """WSGI middleware: counts, statuses, durations and push message ids per function."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.ready = False
        self.started = time.time()
        self.requests: dict[str, int] = defaultdict(int)
        self.in_flight: dict[str, int] = defaultdict(int)
        self.statuses: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.durations: dict[str, list[float]] = defaultdict(list)
        self.acked: dict[str, set[str]] = defaultdict(set)  # function -> message ids answered 2xx
        self.deliveries: dict[str, int] = defaultdict(int)  # function -> push deliveries (all statuses)
        self.sweeps: list[dict[str, float]] = []  # each sweep: start (epoch s), seconds, status

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path == STATS_PATH:
            body = json.dumps(self.snapshot()).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        function = path.strip("/").split("/", 1)[0]
        message_id = None
        if function in PUSH_FUNCTIONS and environ.get("REQUEST_METHOD") == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(raw)
            try:
                message = json.loads(raw).get("message") or {}
                message_id = message.get("messageId") or message.get("message_id")
            except (ValueError, AttributeError):
                message_id = None
        seen: dict[str, int] = {}

        def metered_start(status: str, headers: list, exc_info: Any = None) -> Any:
            seen["status"] = int(status.split(" ", 1)[0])
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        with self.lock:
            self.in_flight[function] += 1
        began_wall, began = time.time(), time.perf_counter()
        try:
            result = self.app(environ, metered_start)
            try:
                chunks = list(result)
            finally:
                close = getattr(result, "close", None)
                if close:
                    close()
        except Exception:
            seen.setdefault("status", 500)
            raise
        finally:
            seconds = time.perf_counter() - began
            status = seen.get("status", 500)
            with self.lock:
                self.in_flight[function] -= 1
                self.requests[function] += 1
                self.statuses[function][status] += 1
                if len(self.durations[function]) < KEEP_DURATIONS:
                    self.durations[function].append(seconds)
                if message_id:
                    self.deliveries[function] += 1
                    if 200 <= status < 300:
                        self.acked[function].add(message_id)
                if function == "sweep":
                    self.sweeps.append({"start": began_wall, "seconds": round(seconds, 4), "status": status})
        return chunks

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            functions = {}
            for name in set(self.requests) | set(self.in_flight):
                durations = self.durations.get(name, [])
                functions[name] = {
                    "requests": self.requests.get(name, 0),
                    "inFlight": self.in_flight.get(name, 0),
                    "statuses": {str(k): v for k, v in self.statuses.get(name, {}).items()},
                    "deliveries": self.deliveries.get(name, 0),
                    "distinctAcked": len(self.acked.get(name, ())),
                    "p50Seconds": _percentile(durations, 0.50),
                    "p99Seconds": _percentile(durations, 0.99),
                }
            return {"ready": self.ready, "at": time.time(), "functions": functions, "sweeps": list(self.sweeps),
                    "landingPending": landing.pending()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load_server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    args = parser.parse_args(argv)

    from werkzeug.serving import make_server

    from functions import logs
    from functions.adapters.metric_store import store
    from functions.config import settings
    from localdev.firestore_bridge import FirestoreBridge
    from localdev.landing_consumer import LandingConsumer
    from localdev.pubsub_setup import setup_push
    from localdev.router import build_app

    logs.configure()
    meter = Meter(build_app())
    base = f"http://127.0.0.1:{args.port}"
    server = make_server("127.0.0.1", args.port, meter, threaded=True)
    threading.Thread(target=server.serve_forever, name="router", daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    bridge = consumer = None
    try:
        pushes = setup_push(base)
        if settings().metric_landing == "pubsub":  # as localdev.run lands rows
            consumer = LandingConsumer(store()).start()
        bridge = FirestoreBridge(base).start()
        meter.ready = True
        print(f"serving {base}; push subscriptions: {json.dumps(pushes)}", flush=True)
        stop.wait(args.max_seconds)
        return 0
    finally:
        if bridge:
            bridge.stop()
        server.shutdown()
        if consumer:
            consumer.stop()


if __name__ == "__main__":
    sys.exit(main())
