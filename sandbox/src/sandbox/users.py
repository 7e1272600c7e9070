"""Users and API tokens the simulators accept (`--user alice:TOKEN[:Full Name[:mail]]`)."""

from __future__ import annotations

import time

from pydantic import BaseModel, Field

__all__ = ["User", "default_users", "parse_user"]


class User(BaseModel):
    """An account of the simulated service. `token` is what the client sends."""

    username: str
    token: str
    name: str = ""
    mail: str = ""
    admin: bool = False
    expires_at: float = Field(
        default_factory=lambda: time.time() + 30 * 24 * 3600, description="epoch seconds"
    )

    @property
    def full_name(self) -> str:
        return self.name or self.username.capitalize()

    @property
    def email(self) -> str:
        return self.mail or f"{self.username}@example.org"


def default_users(prefix: str) -> list[User]:
    """The documented demo accounts: alice and bob, tokens `<prefix>-alice` and `<prefix>-bob`."""
    return [
        User(username="alice", token=f"{prefix}-alice", name="Alice Demo"),
        User(username="bob", token=f"{prefix}-bob", name="Bob Demo"),
    ]


def parse_user(value: str) -> User:
    """`username:token[:Full Name[:mail]]`, the `--user` CLI syntax."""
    parts = value.split(":")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ValueError(f"expected username:token[:name[:mail]], got {value!r}")
    name = parts[2] if len(parts) > 2 else ""
    mail = parts[3] if len(parts) > 3 else ""
    return User(username=parts[0], token=parts[1], name=name, mail=mail)
