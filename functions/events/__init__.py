"""CloudEvent plumbing (Pub/Sub, Firestore triggers) and one handler module per event source."""
