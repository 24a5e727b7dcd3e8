"""Credentials in the database: API keys, one-time sign-in nonces and contributor bearer tokens."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session as DbSession

from ledger.auth.keys import InvalidApiKey, Scope, generate_api_key, hash_api_key, hash_token, new_bearer_token, parse_api_key, verify_api_key
from ledger.auth.siwe import SiweError, new_nonce, verify
from ledger.errors import Forbidden, Unauthorized
from ledger.models import AccessToken, ApiKey, SignInNonce

logger = logging.getLogger(__name__)

NONCE_TTL = timedelta(minutes=10)


def create_api_key(db: DbSession, *, name: str, scope: Scope) -> str:
    """Store a new API key and return its plaintext, which is shown once and never stored."""
    key, key_id = generate_api_key()
    db.add(ApiKey(key_id=key_id, secret_hash=hash_api_key(key), scope=scope.value, name=name))
    db.flush()
    logger.info("auth.api_key.created key_id=%s scope=%s", key_id, scope.value)
    return key


def register_api_key(db: DbSession, *, key: str, name: str, scope: Scope) -> None:
    """Store a key generated elsewhere (for example from the environment), if not stored yet."""
    key_id, _ = parse_api_key(key)
    if db.get(ApiKey, key_id) is None:
        db.add(ApiKey(key_id=key_id, secret_hash=hash_api_key(key), scope=scope.value, name=name))
        db.flush()
        logger.info("auth.api_key.registered key_id=%s scope=%s", key_id, scope.value)


def authenticate_api_key(db: DbSession, key: str | None, *, scope: Scope) -> ApiKey:
    """Return the stored key matching `key` if it is valid, not revoked and has `scope`.

    Raises:
        Unauthorized: when the key is missing, malformed, unknown or revoked.
        Forbidden: when the key lacks `scope`.
    """
    if not key:
        raise Unauthorized("missing API key: send it in the X-API-Key header", code="missing_api_key")
    try:
        key_id, _ = parse_api_key(key)
    except InvalidApiKey as error:
        raise Unauthorized(str(error), code="invalid_api_key") from None
    stored = db.get(ApiKey, key_id)
    if stored is None or stored.revoked_at is not None or not verify_api_key(key, stored.secret_hash):
        raise Unauthorized("unknown or revoked API key", code="invalid_api_key")
    if stored.scope != scope.value and stored.scope != Scope.admin.value:
        raise Forbidden(f"API key {key_id} lacks the {scope.value} scope", code="insufficient_scope")
    return stored


def issue_nonce(db: DbSession, *, now: datetime) -> tuple[str, datetime]:
    """Create a one-time sign-in nonce and return it with its expiry."""
    nonce = new_nonce()
    expires_at = now + NONCE_TTL
    db.add(SignInNonce(nonce=nonce, expires_at=expires_at))
    db.flush()
    return nonce, expires_at


@dataclass(frozen=True)
class SignIn:
    """A successful sign-in: the bearer token (shown once) and whose it is."""

    token: str
    address: str
    expires_at: datetime


def sign_in(
    db: DbSession,
    *,
    message: str,
    signature: str,
    domain: str,
    chain_id: int,
    token_ttl: timedelta,
    now: datetime,
) -> SignIn:
    """Check a signed EIP-4361 message, consume its nonce and issue a bearer token.

    Raises:
        Unauthorized: with the sign-in error's code when the message, signature, domain, chain,
            validity window or nonce is wrong.
    """
    try:
        parsed = verify(message, signature, expected_domain=domain, expected_chain_id=chain_id, now=now)
    except SiweError as error:
        raise Unauthorized(str(error), code=getattr(error, "code", "siwe_invalid")) from None

    consumed = db.execute(
        update(SignInNonce)
        .where(SignInNonce.nonce == parsed.nonce, SignInNonce.used_at.is_(None), SignInNonce.expires_at > now)
        .values(used_at=now)
    )
    if consumed.rowcount != 1:
        raise Unauthorized(
            "sign-in nonce is unknown, expired or already used: request a new one from /v1/auth/nonce",
            code="siwe_bad_nonce",
        )
    token = new_bearer_token()
    expires_at = now + token_ttl
    if parsed.expiration_time is not None:
        expires_at = min(expires_at, parsed.expiration_datetime)
    db.add(AccessToken(token_hash=hash_token(token), contributor=parsed.address, expires_at=expires_at))
    db.flush()
    logger.info("auth.sign_in contributor=%s", parsed.address)
    return SignIn(token=token, address=parsed.address, expires_at=expires_at)


def authenticate_token(db: DbSession, token: str | None, *, now: datetime) -> str:
    """Return the contributor address of a valid bearer token.

    Raises:
        Unauthorized: when the token is missing, unknown or expired.
    """
    if not token:
        raise Unauthorized("missing bearer token: sign in at /v1/auth/sign-in", code="missing_token")
    address = db.scalar(
        select(AccessToken.contributor).where(AccessToken.token_hash == hash_token(token), AccessToken.expires_at > now)
    )
    if address is None:
        raise Unauthorized("bearer token is unknown or expired: sign in again", code="invalid_token")
    return address


def revoke_token(db: DbSession, token: str | None, *, now: datetime) -> str:
    """End a bearer token now (sign-out) and return its contributor's address.

    The row is kept with `expires_at` moved to `now`, so `authenticate_token` rejects it.

    Raises:
        Unauthorized: when the token is missing, unknown or already expired.
    """
    address = authenticate_token(db, token, now=now)
    assert token is not None
    db.execute(update(AccessToken).where(AccessToken.token_hash == hash_token(token)).values(expires_at=now))
    db.flush()
    logger.info("auth.sign_out contributor=%s", address)
    return address
