"""API clients, OAuth 2.0 client-credentials tokens, roles and scopes."""
