"""Passwords: argon2id hashing (off the event loop) and a strength policy.

Strength is judged by zxcvbn (the estimator Dropbox published), fed the user's own names so
"alice2024!" is weak for alice, plus a minimum and maximum length. The maximum bounds the cost
of hashing an attacker's megabyte-long "password".
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MAX_PASSWORD_LENGTH = 128
# zxcvbn refuses longer input; what lies beyond 72 characters only adds strength.
_ZXCVBN_MAX = 72
# A valid argon2id hash of a random password nobody knows: verified against when the account
# does not exist, so a login for an unknown name costs as much time as for a real one.
_UNKNOWN_USER_PASSWORD = "no account has this password: timing equaliser"


class WeakPassword(ValueError):
    """The password does not meet the policy; the message says why and how to fix it."""


class Passwords:
    """argon2id with the configured cost; hashing and verifying run in a worker thread."""

    def __init__(self, *, time_cost: int, memory_cost_kib: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost_kib, parallelism=parallelism
        )
        self._dummy_hash = self._hasher.hash(_UNKNOWN_USER_PASSWORD)

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True when ``password`` matches; with no hash, spends the same time and is False."""
        target = password_hash or self._dummy_hash
        try:
            ok = await asyncio.to_thread(self._hasher.verify, target, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return bool(ok) and password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with other parameters than today's (upgrade at login)."""
        return self._hasher.check_needs_rehash(password_hash)


def check_strength(
    password: str, *, user_inputs: Iterable[str | None], min_length: int, min_score: int
) -> None:
    """Raise :class:`WeakPassword` unless ``password`` meets the policy."""
    if len(password) < min_length:
        raise WeakPassword(f"the password must have at least {min_length} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPassword(f"the password must have at most {MAX_PASSWORD_LENGTH} characters")
    inputs = [value for value in user_inputs if value]
    inputs += [part for value in inputs for part in value.replace("@", " ").split()]
    # Imported at the first password chosen, not at start: its word lists take ~12 MB, which a
    # user-service that only logs people in never needs.
    from zxcvbn import zxcvbn  # type: ignore[import-untyped]

    result = zxcvbn(password[:_ZXCVBN_MAX], user_inputs=inputs)
    if int(result["score"]) < min_score:
        feedback = result.get("feedback") or {}
        hints = [feedback.get("warning") or "", *feedback.get("suggestions", [])]
        reason = " ".join(h for h in hints if h) or "it is too easy to guess"
        raise WeakPassword(f"the password is too weak: {reason}")
