"""Incidents: ingest, corrections, retractions, idempotency, pseudonyms and note screening."""
