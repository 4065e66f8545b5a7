"""Console tests run against the real emulators; Firestore is emptied around each test."""

from __future__ import annotations

import re

import pytest


@pytest.fixture(autouse=True)
def _fresh_firestore(clean_firestore):
    yield


CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


class ConsoleClient:
    """The console through functions_framework's own app (Flask test client), signed in as someone."""

    def __init__(self, client) -> None:
        self.client = client

    def csrf(self, path: str = "/experiments") -> str:
        page = self.client.get(path)
        found = CSRF.search(page.get_data(as_text=True))
        assert found, f"no CSRF token on {path}: {page.status_code}"
        return found.group(1)

    def sign_in(self, uid: str, role: str) -> ConsoleClient:
        token = self.csrf("/signin")
        resp = self.client.post("/signin", data={"uid": uid, "role": role, "csrf": token, "next": "/experiments"})
        assert resp.status_code == 303, resp.get_data(as_text=True)[:500]
        return self

    def post(self, path: str, data: dict, **kw):
        return self.client.post(path, data={**data, "csrf": self.csrf()}, **kw)

    def get(self, path: str, **kw):
        return self.client.get(path, **kw)


@pytest.fixture
def console(emulators):
    from functions_framework import create_app

    from tests.conftest import ROOT

    def make(uid: str | None = None, role: str | None = None) -> ConsoleClient:
        client = ConsoleClient(create_app(target="console", source=str(ROOT / "main.py")).test_client())
        return client.sign_in(uid, role) if uid else client

    return make


@pytest.fixture
def served(emulators):
    from tests.console.browser import serve_all

    yield from serve_all(emulators)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    from tests.console.browser import chromium_path

    executable = chromium_path()
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def open_page(browser):
    """`page, watch = open_page()`: a fresh context (own cookies) with error watching."""
    from tests.console.browser import Watch

    contexts = []

    def make():
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        page = context.new_page()
        watch = Watch()
        watch.attach(page)
        return page, watch

    yield make
    for context in contexts:
        context.close()
