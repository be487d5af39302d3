"""The access log (NEN 7513): who touched which records, when, on whose behalf, with what outcome."""
