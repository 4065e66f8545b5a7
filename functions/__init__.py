"""Offer experimentation and holdout framework (Cloud Functions on Firestore and Pub/Sub)."""
