"""The index checker itself: which query shapes need which composite index."""

from __future__ import annotations

from google.auth.credentials import AnonymousCredentials
from google.cloud.firestore_v1 import Client
from google.cloud.firestore_v1.base_query import FieldFilter

from tests.support.query_recorder import covered, shape_of, unrecorded_protobuf

client = Client(project="demo-x", credentials=AnonymousCredentials())
INDEX = {
    "indexes": [
        {
            "collectionGroup": "experimentSnapshots",
            "queryScope": "COLLECTION",
            "fields": [{"fieldPath": "experimentId", "order": "ASCENDING"}, {"fieldPath": "at", "order": "DESCENDING"}],
        }
    ],
    "fieldOverrides": [
        {
            "collectionGroup": "outbox",
            "fieldPath": "sent",
            "indexes": [{"order": "ASCENDING", "queryScope": "COLLECTION_GROUP"}],
        }
    ],
}


def shape(query):
    return shape_of(unrecorded_protobuf(query))


def test_equality_and_single_field_queries_need_no_composite():
    q = client.collection("offerExperiments").where(filter=FieldFilter("state", "==", "RUNNING"))
    assert not shape(q).needs_composite() and covered(shape(q), {})
    q2 = q.where(filter=FieldFilter("layer", "==", "pricing"))
    assert not shape(q2).needs_composite()


def test_equality_plus_order_needs_the_matching_composite():
    q = client.collection("experimentSnapshots").where(filter=FieldFilter("experimentId", "==", "e1")).order_by(
        "at", direction="DESCENDING"
    )
    assert shape(q).needs_composite()
    assert covered(shape(q), INDEX)
    wrong_direction = client.collection("experimentSnapshots").where(
        filter=FieldFilter("experimentId", "==", "e1")
    ).order_by("at")
    assert not covered(shape(wrong_direction), INDEX)
    other = client.collection("rolloutEvents").where(filter=FieldFilter("experimentId", "==", "e1")).order_by("at")
    assert not covered(shape(other), INDEX)


def test_collection_group_queries_need_the_scope_enabled():
    q = client.collection_group("outbox").where(filter=FieldFilter("sent", "==", False))
    assert covered(shape(q), INDEX)
    assert not covered(shape(q), {"indexes": [], "fieldOverrides": []})
