"""Anonymous identity: random tokens, stored hashed, never logged."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final

__all__ = ["hash_secret", "new_identity", "parse_token", "suggest_name", "verify"]

_ADJECTIVES: Final = (
    "amber", "brisk", "calm", "dusky", "eager", "fuzzy", "gentle", "hazel", "icy", "jolly",
    "keen", "lucky", "mellow", "nimble", "olive", "plucky", "quiet", "rusty", "sunny", "tidy",
)
_ANIMALS: Final = (
    "otter", "badger", "heron", "lynx", "marten", "newt", "orca", "puffin", "quail", "raven",
    "stoat", "tapir", "urchin", "vole", "walrus", "yak", "zebu", "gecko", "ibis", "koala",
)


def new_identity() -> tuple[str, str]:
    """Return ``(user_id, token)``. The user id is 64 random bits, the secret 256."""
    user = secrets.token_hex(8)
    return user, f"{user}.{secrets.token_urlsafe(32)}"


def parse_token(token: str | None) -> tuple[str, str] | None:
    """Split a token into ``(user_id, secret)``, or None if it is not one of ours."""
    if not token:
        return None
    user, sep, secret = token.partition(".")
    if not sep or len(user) != 16 or len(secret) < 32:
        return None
    try:
        int(user, 16)
    except ValueError:
        return None
    return user, secret


def hash_secret(secret: str) -> str:
    # The secret has 256 bits of entropy, so a fast hash is enough (no need for a KDF).
    return hashlib.sha256(secret.encode()).hexdigest()


def verify(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def suggest_name(user: str) -> str:
    """A friendly default name derived from the user id, e.g. ``calm-otter``."""
    n = int(user[:8], 16)
    return f"{_ADJECTIVES[n % len(_ADJECTIVES)]}-{_ANIMALS[(n // 97) % len(_ANIMALS)]}"
