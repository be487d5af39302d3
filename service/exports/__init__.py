"""Pseudonymised record exports for auditors, streamed as CSV or NDJSON."""
