"""A real browser (Debian's Chromium driven by Playwright) against the served functions.

The whole local system is served in-process (every function under /<name>, as `make run` does)
with Pub/Sub push subscriptions, so exposures flow exactly as in a deployment. A missing
Chromium FAILS the tests (never skips): the console is only tested if a browser runs it.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import ROOT

ARTIFACTS = ROOT / "artifacts" / "console"


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("CHROMIUM MISSING: the console browser tests need Debian's `chromium` package "
                    "(scripts/setup.sh installs it: apt-get install -y chromium)", pytrace=False)
    return path


@dataclass
class Served:
    base: str
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def console(self) -> str:
        return f"{self.base}/console"


@dataclass
class Watch:
    """Console errors, page errors and failed or refused requests seen by one page."""

    errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def attach(self, page) -> None:
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.method} {r.url} {r.failure}"))
        page.on("response", lambda r: self.failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)

    def take(self) -> tuple[list[str], list[str]]:
        errors, failed = list(self.errors), list(self.failed)
        self.errors.clear()
        self.failed.clear()
        return errors, failed


def serve_all(emulators) -> Iterator[Served]:
    from werkzeug.serving import make_server

    from localdev.emulators import free_port
    from localdev.pubsub_setup import setup_push
    from localdev.router import build_app

    port = free_port()
    server = make_server("127.0.0.1", port, build_app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    served = Served(f"http://127.0.0.1:{port}")
    subscriptions = setup_push(served.base)
    try:
        yield served
    finally:
        _drop_push_subscriptions(subscriptions)
        server.shutdown()


def _drop_push_subscriptions(created: dict[str, str]) -> None:
    from google.cloud import pubsub_v1

    from functions.triggers import PUBSUB_FUNCTIONS
    from localdev.pubsub_setup import subscription_path

    with pubsub_v1.SubscriberClient() as subscriber:
        for function in PUBSUB_FUNCTIONS:
            with contextlib.suppress(Exception):  # already gone is fine
                subscriber.delete_subscription(request={"subscription": subscription_path(function)})


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def unlabelled_controls(page) -> list[str]:
    """Every visible input, select and textarea needs a <label for> or an aria-label."""
    return page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
        .filter(el => el.type !== 'hidden')
        .filter(el => !(el.id && document.querySelector(`label[for="${el.id}"]`)) && !el.getAttribute('aria-label'))
        .map(el => el.outerHTML.slice(0, 120))""")


_PATH_OPS = re.compile(rb"(?<![A-Za-z])(?:re|l|c|m)(?![A-Za-z])")


_FONT_PROGRAM = re.compile(rb"/Length[123]\b|/Subtype\s*/(?:Type1C|CIDFontType0C|OpenType)")


def pdf_drawing_ops(pdf: bytes) -> int:
    """Vector path operators (move, line, curve, rectangle) in the PDF's content streams. Embedded
    font programs are skipped: their binary glyph data matches the operators by chance, and each
    PDF embeds a different subset, which made the count move by hundreds between two prints."""
    total = 0
    for m in re.finditer(rb"<<((?:(?!>>).)*)>>\s*stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        if _FONT_PROGRAM.search(m.group(1)):
            continue
        data = m.group(2)
        try:
            data = zlib.decompress(data)
        except zlib.error:
            continue
        total += len(_PATH_OPS.findall(data))
    return total
