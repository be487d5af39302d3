"""The access log: an event per request, its hash chain, and appends under concurrency."""
