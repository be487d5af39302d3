"""Auditor exports: both formats against the database, scope, and memory while streaming."""
