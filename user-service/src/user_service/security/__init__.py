"""Cryptographic building blocks: password hashing, signing keys, opaque tokens, vault cipher."""
