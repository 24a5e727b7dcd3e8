"""Transactions the service sent to the chain and events it read back."""

import enum
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from ledger.models.base import Base, TokenAmount, utc_now_column


class AnchorTxStatus(enum.StrEnum):
    """Outcome of one signed anchor transaction."""

    SIGNED = "signed"
    """Signed and stored; it may or may not have reached a node."""
    SENT = "sent"
    """Accepted by the node."""
    MINED = "mined"
    """In a block with status 1."""
    FAILED = "failed"
    """Mined with status 0, or rejected by the node."""
    REPLACED = "replaced"
    """Another transaction with the same nonce was mined."""
    REVOKED = "revoked"
    """Mined, but the guardian revoked the epoch it anchored; kept for the record only."""


class AnchorTransaction(Base):
    """Every anchor transaction signed for an epoch. It is stored before it is sent."""

    __tablename__ = "anchor_transactions"

    tx_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    epoch: Mapped[int] = mapped_column(ForeignKey("epochs.number"), nullable=False, index=True)
    sender: Mapped[str] = mapped_column(String(42), nullable=False)
    nonce: Mapped[int] = mapped_column(BigInteger, nullable=False)
    raw_tx: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    max_fee_per_gas: Mapped[int] = mapped_column(TokenAmount, nullable=False)
    max_priority_fee_per_gas: Mapped[int] = mapped_column(TokenAmount, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    block_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    gas_used: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = utc_now_column()


class ChainClaim(Base):
    """A `Claimed` event read back from the distributor."""

    __tablename__ = "chain_claims"

    tx_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    log_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger, nullable=False)
    block_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    account: Mapped[str] = mapped_column(String(42), nullable=False, index=True)
    amount: Mapped[int] = mapped_column(TokenAmount, nullable=False)
    cumulative_amount: Mapped[int] = mapped_column(TokenAmount, nullable=False)
    epoch: Mapped[int] = mapped_column(Integer, nullable=False)


class IndexerCursor(Base):
    """Last block an indexer has fully processed."""

    __tablename__ = "indexer_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger, nullable=False)
    block_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    """Hash of `block_number` when it was indexed; a different canonical hash means a reorg."""
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class SignerNonce(Base):
    """The next nonce the service will use for one signer on one chain.

    Every transaction the service signs takes its nonce from here, under a row lock, so two
    jobs signing for the same key never pick the same nonce.
    """

    __tablename__ = "signer_nonces"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    next_nonce: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_at: Mapped[datetime] = utc_now_column()
