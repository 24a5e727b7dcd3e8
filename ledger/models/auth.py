"""Credentials: collector and admin API keys, sign-in nonces and contributor bearer tokens."""

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from ledger.models.base import Base, utc_now_column


class ApiKey(Base):
    """A scoped API key. Only the SHA-256 of its secret is stored."""

    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    scope: Mapped[str] = mapped_column(String(32), nullable=False)
    """`sessions_write` for collectors, `admin` for operators."""
    name: Mapped[str] = mapped_column(String(128), nullable=False)
    created_at: Mapped[datetime] = utc_now_column()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SignInNonce(Base):
    """A one-time nonce for an EIP-4361 sign-in message."""

    __tablename__ = "sign_in_nonces"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = utc_now_column()


class AccessToken(Base):
    """A contributor's short-lived bearer token, stored hashed."""

    __tablename__ = "access_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    contributor: Mapped[str] = mapped_column(String(42), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_at: Mapped[datetime] = utc_now_column()
