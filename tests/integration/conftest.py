"""Integration tests run against the real emulators; Firestore is emptied around each test."""

import pytest


@pytest.fixture(autouse=True)
def _fresh_firestore(clean_firestore):
    yield
