"""Thin adapters to the cloud: Firestore repositories, Pub/Sub publishing, auth, outbox."""
