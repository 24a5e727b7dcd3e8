"""Scoped API keys for collectors and administrators, and bearer tokens for contributor sessions.

Only hashes are stored. Plain SHA-256 is enough for both credentials because each carries 256 bits
from `secrets`, so a slow password hash would add no protection against guessing. An API key has
the form `<prefix>_<key id>_<secret>`: the key id (16 hexadecimal digits) is stored in clear to
find the row, and the secret (64 hexadecimal digits) is checked against the stored hash.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from enum import StrEnum

DEFAULT_KEY_PREFIX = "lk"

_PREFIX_RE = re.compile(r"[a-z][a-z0-9]{0,15}")
_KEY_ID_BYTES = 8
_SECRET_BYTES = 32
_TOKEN_BYTES = 32


class InvalidApiKey(ValueError):
    """A string that is not an API key of the expected form. The message never contains the key."""


class Scope(StrEnum):
    """Permission granted to an API key."""

    #: Submit sessions, as a trusted collector.
    sessions_write = "sessions_write"
    #: Administer the service, for example close an epoch.
    admin = "admin"


def parse_scopes(values: Iterable[str]) -> frozenset[Scope]:
    """Convert scope names, for example from a database row or a CLI option, into `Scope` members.

    Raises:
        ValueError: a name is not a known scope.
    """
    scopes: set[Scope] = set()
    for value in values:
        try:
            scopes.add(Scope(value))
        except ValueError:
            known = ", ".join(scope.value for scope in Scope)
            raise ValueError(f"unknown scope {value!r}, expected one of: {known}") from None
    return frozenset(scopes)


def _check_prefix(prefix: str) -> None:
    if not _PREFIX_RE.fullmatch(prefix):
        raise ValueError(
            f"invalid API key prefix {prefix!r}: use 1 to 16 lowercase letters and digits, "
            "starting with a letter"
        )


def generate_api_key(prefix: str = DEFAULT_KEY_PREFIX) -> tuple[str, str]:
    """Generate a new API key and return `(plaintext key, key id)`.

    Show the plaintext key to its owner once and store only the key id and `hash_api_key(key)`.
    """
    _check_prefix(prefix)
    key_id = secrets.token_hex(_KEY_ID_BYTES)
    secret = secrets.token_hex(_SECRET_BYTES)
    return f"{prefix}_{key_id}_{secret}", key_id


def parse_api_key(key: str, *, prefix: str = DEFAULT_KEY_PREFIX) -> tuple[str, str]:
    """Split an API key into `(key id, secret)`.

    Raises:
        InvalidApiKey: the key does not have the form `<prefix>_<16 hex digits>_<64 hex digits>`.
    """
    _check_prefix(prefix)
    if not isinstance(key, str):
        raise InvalidApiKey(f"expected the API key as str, got {type(key).__name__}")
    parts = key.split("_")
    expected_form = f"expected {prefix}_<key id>_<secret>"
    if len(parts) != 3:
        raise InvalidApiKey(f"malformed API key: {expected_form}")
    key_prefix, key_id, secret = parts
    if key_prefix != prefix:
        raise InvalidApiKey(f"malformed API key: wrong prefix, {expected_form}")
    if not re.fullmatch(rf"[0-9a-f]{{{2 * _KEY_ID_BYTES}}}", key_id):
        raise InvalidApiKey(
            f"malformed API key: the key id must be {2 * _KEY_ID_BYTES} lowercase hex digits"
        )
    if not re.fullmatch(rf"[0-9a-f]{{{2 * _SECRET_BYTES}}}", secret):
        raise InvalidApiKey(
            f"malformed API key: the secret must be {2 * _SECRET_BYTES} lowercase hex digits"
        )
    return key_id, secret


def hash_api_key(key: str, *, prefix: str = DEFAULT_KEY_PREFIX) -> str:
    """Return the SHA-256 hex digest of the key's secret, the value to store.

    Raises:
        InvalidApiKey: the key is malformed.
    """
    _, secret = parse_api_key(key, prefix=prefix)
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def verify_api_key(key: str, stored_hash: str, *, prefix: str = DEFAULT_KEY_PREFIX) -> bool:
    """Check a presented key against the hash stored for its key id, in constant time.

    Raises:
        InvalidApiKey: the key is malformed.
    """
    return hmac.compare_digest(hash_api_key(key, prefix=prefix), stored_hash)


def new_bearer_token() -> str:
    """Generate a contributor session token: 256 random bits, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(_TOKEN_BYTES)


def hash_token(token: str) -> str:
    """Return the SHA-256 hex digest of a bearer token, the value to store and look up."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
