"""Run the whole system locally: emulators, every function, Pub/Sub push, the sweep ticker,
the Firestore trigger bridge, then the demo that walks a full experiment lifecycle.

    python -m localdev.run [--port 8000] [--tick-seconds 30] [--no-demo] [--exit-after-demo] [--quiet]
                           [--log-level WARNING] [--landing pubsub|direct]

`make run ARGS="--quiet --no-demo"` passes flags through. `--quiet` prints only the demo's story
and the URLs; the rest (emulator hosts, push subscriptions, settings) and the functions' JSON logs
go to `.run/localdev.log`.

Metric-store rows land as in the cloud by default (`--landing pubsub`, or $METRIC_LANDING): the
functions publish them to the landing topics and a batching consumer in this process
(localdev.landing_consumer) appends them to the embedded store; reads wait for them.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from werkzeug.serving import make_server

from functions.core.clock import utc_now
from localdev.emulators import Emulators, EmulatorUnavailable, free_port

if TYPE_CHECKING:
    from localdev.landing_consumer import LandingConsumer


LOG_NAME = "localdev.log"  # in the emulators' log directory, .run/


class Stopped(BaseException):
    """SIGTERM or Ctrl-C: raised in the main thread wherever it is (starting the emulators, the
    demo, serving), so the clean-up runs at once instead of after the demo's waits."""


def _stop_on_signals() -> None:
    def handler(signum: int, _frame: object) -> None:
        raise Stopped(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _exit(code: int) -> None:
    """Leave without waiting for worker threads still retrying against the stopped emulators
    (Python joins non-daemon threads, such as thread pools, at exit: minutes of retries)."""
    deadline = time.monotonic() + 3.0
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class Output:
    """What the run prints. Story lines and URLs always reach the terminal; details do too, unless
    `quiet`, when they go to the log file with the functions' logs."""

    def __init__(self, quiet: bool, log_path: Path) -> None:
        self.quiet = quiet
        self.log_path = log_path
        self._file: TextIO | None = None
        if quiet:  # one run's details and logs; both handles append, so their lines interleave whole
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log_path.write_text("")

    def story(self, text: str) -> None:
        print(text, flush=True)

    def detail(self, text: str) -> None:
        if not self.quiet:
            print(text, flush=True)
            return
        if self._file is None:
            self._file = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the run
        self._file.write(text + "\n")
        self._file.flush()

    def send_logs_to_file(self) -> None:
        """With `quiet`, the functions' JSON logs go to the log file instead of stdout."""
        if not self.quiet:
            return
        from functions.logs import CloudJsonFormatter

        handler = logging.FileHandler(self.log_path, encoding="utf-8")
        handler.setFormatter(CloudJsonFormatter())
        logging.getLogger().handlers[:] = [handler]


def _ticker(stop: threading.Event, seconds: float) -> None:
    from functions.adapters.pubsub import publish

    while not stop.wait(seconds):
        with contextlib.suppress(Exception):
            now = utc_now()
            publish("sweep_ticks", {"eventId": f"tick-{now.isoformat()}", "tick": now.isoformat()})


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0, help="router port (default: a free one, 8000 if free)")
    parser.add_argument("--tick-seconds", type=float, default=30.0, help="local Cloud Scheduler interval")
    parser.add_argument("--no-demo", action="store_true")
    parser.add_argument("--exit-after-demo", action="store_true")
    parser.add_argument("--quiet", action="store_true",
                        help=f"print only the demo's story and the URLs; details and logs go to .run/{LOG_NAME}")
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL") or "WARNING",
                        help="the functions' JSON logs on stdout (default WARNING, or $LOG_LEVEL; INFO logs "
                             "every request and event)")
    parser.add_argument("--landing", choices=("pubsub", "direct"), default=os.environ.get("METRIC_LANDING") or "pubsub",
                        help="how metric-store rows land: through the landing topics and a local batching consumer "
                             "(default, as in the cloud), or appended by the function itself")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["LOG_LEVEL"] = args.log_level.upper()  # read by settings() when the functions load
    os.environ["METRIC_LANDING"] = args.landing

    _stop_on_signals()
    emulators = Emulators()
    try:
        return _serve(args, emulators, Output(args.quiet, emulators.log_dir / LOG_NAME))
    except EmulatorUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Stopped as stopped:
        print(f"stopping ({stopped})", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal must not cut the clean-up short
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        emulators.stop()


def _serve(args: argparse.Namespace, emulators: Emulators, out: Output) -> int:
    emulators.start()
    # Imported after the emulators export their variables.
    from functions import logs
    from localdev.firestore_bridge import FirestoreBridge
    from localdev.pubsub_setup import setup_push
    from localdev.router import build_app
    from localdev.targets import entry_points

    logs.configure()
    out.send_logs_to_file()
    port = args.port or _preferred_port()
    base = f"http://127.0.0.1:{port}"
    server = make_server("127.0.0.1", port, build_app(), threaded=True)
    serving = threading.Thread(target=server.serve_forever, name="router", daemon=True)
    serving.start()
    stop = threading.Event()
    bridge = consumer = None
    try:
        pushes = setup_push(base)
        consumer = _landing_consumer()
        bridge = FirestoreBridge(base).start()
        threading.Thread(target=_ticker, args=(stop, args.tick_seconds), name="ticker", daemon=True).start()
        out.detail(f"\nFirestore emulator  {emulators.firestore_host}\nPub/Sub emulator    {emulators.pubsub_host}")
        out.detail(f"project             {emulators.project_id}\n")
        out.story(f"functions at {base}:")
        for name, kind in entry_points().items():
            out.story(f"  {kind:10s} {base}/{name}")
        out.detail("\npush subscriptions:")
        for topic, endpoint in pushes.items():
            out.detail(f"  {topic:20s} -> {endpoint}")
        out.detail("metric store rows land " + ("through the landing topics and a local batching consumer"
                                                if consumer else "directly from the functions"))
        out.detail(f"sweep ticks every {args.tick_seconds:g}s; function logs at {os.environ['LOG_LEVEL']} and above "
                   "(--log-level INFO shows every request)\n")
        if out.quiet:
            out.story(f"details and logs: {out.log_path}")
        out.story(f"console: {base}/console/  (locally: sign in as any user and role)\n")
        if not args.no_demo:
            from localdev.demo import run_demo

            run_demo(base)
        if args.exit_after_demo:
            return 0
        out.story(f"console at {base}/console/")
        out.story("serving; Ctrl-C stops everything")
        while True:
            time.sleep(3600)  # until SIGTERM or Ctrl-C raises Stopped
    finally:
        stop.set()
        steps = ([bridge.stop] if bridge else []) + [server.shutdown] + ([consumer.stop] if consumer else [])
        for step in steps:
            with contextlib.suppress(Exception):  # the emulators are stopped whatever happens here
                step()


def _landing_consumer() -> LandingConsumer | None:
    """With METRIC_LANDING=pubsub, the local stand-in for the BigQuery subscriptions."""
    from functions.adapters.metric_store import store
    from functions.config import settings
    from localdev.landing_consumer import LandingConsumer

    if settings().metric_landing != "pubsub":
        return None
    return LandingConsumer(store()).start()


def _preferred_port() -> int:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", 8000))
            return 8000
        except OSError:
            return free_port()


if __name__ == "__main__":
    _exit(main())
