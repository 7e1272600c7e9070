"""Tokens: signed JWTs (access, service), refresh-token sessions, personal API tokens, JWKS."""
