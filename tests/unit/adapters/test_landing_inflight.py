"""Reads wait for rows published to the landing topics only while a consumer in the same process
lands them, whichever of publisher and consumer sees a message id first."""

from __future__ import annotations

import pytest

from functions.adapters.metric_store import landing


@pytest.fixture
def consumer():
    landing.attach_consumer()
    yield
    landing.detach_consumer()


def test_without_a_consumer_nothing_is_tracked_and_reads_do_not_wait():
    landing._inflight.add(["m1"])
    assert landing.pending() == 0 and landing.settle(0.01) is True


def test_a_read_waits_until_what_was_published_before_it_has_landed(consumer):
    landing._inflight.add(["m1", "m2"])
    assert landing.pending() == 2 and landing.settle(0.01) is False
    landing.landed(["m1"])
    assert landing.settle(0.01) is False
    landing.landed(["m2"])
    assert landing.pending() == 0 and landing.settle(0.01) is True


def test_a_message_landed_before_its_publisher_got_the_id_is_never_pending(consumer):
    landing.landed(["fast"])  # the consumer was quicker than the publish future
    landing._inflight.add(["fast", "slow"])
    assert landing.pending() == 1
    landing.landed(["slow"])
    assert landing.settle(0.01) is True


def test_detaching_the_last_consumer_releases_waiting_reads(consumer):
    landing._inflight.add(["m1"])
    landing.detach_consumer()
    assert landing.settle(0.01) is True
    landing.attach_consumer()  # the fixture detaches once more
