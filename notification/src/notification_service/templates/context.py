"""What a template sees: the event's public fields, the recipient's name, and links.

Nothing secret enters a context: fields whose names speak of tokens, secrets, passwords or
keys are dropped from the event (a sealed token included), so no template, an admin's
included, can put one in a message. The one exception is an account email's ``action_url``,
which carries the opened one-time token and is added only at the moment the email is sent
(``email/sender.py``), never stored.
"""

from __future__ import annotations

from typing import Any

from fedimpute_shared.events import Event

__all__ = ["SECRET_WORDS", "event_context", "public_fields"]

SECRET_WORDS = ("token", "secret", "password", "key", "credential")


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def public_fields(value: Any) -> Any:
    """``value`` (JSON-like) without any key that names a secret, at any depth."""
    if isinstance(value, dict):
        return {k: public_fields(v) for k, v in value.items() if not _is_secret(str(k))}
    if isinstance(value, list):
        return [public_fields(item) for item in value]
    return value


def event_context(
    event: Event, *, event_type: str, app_url: str, link_path: str | None, username: str | None
) -> dict[str, Any]:
    """The context of every template rendered for ``event`` (JSON-serialisable: emails keep
    it until they are sent)."""
    return {
        "event_type": event_type,
        "event": public_fields(event.model_dump(mode="json")),
        "username": username or "",
        "app_url": app_url,
        "link": f"{app_url}{link_path}" if link_path else None,
    }
