"""Epochs, their token allocations and the cumulative entitlements published in claims trees."""

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Enum, ForeignKey, Integer, LargeBinary, String, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from ledger.models.base import Base, TokenAmount, utc_now_column


class EpochStatus(enum.StrEnum):
    """Steps of an epoch, from taking sessions to a claimable root on chain."""

    OPEN = "open"
    """Sessions scored now count towards this epoch."""
    CLOSED = "closed"
    """No more points; allocation not yet computed."""
    BUILT = "built"
    """Allocation, trees and proofs stored; nothing sent yet."""
    SUBMITTED = "submitted"
    """An anchor transaction was sent and is awaiting confirmations."""
    ANCHORED = "anchored"
    """The anchor has the configured confirmations; the claims root is in its challenge period."""
    ACTIVE = "active"
    """The challenge period passed: claims against this root succeed."""
    REVOKED = "revoked"
    """A guardian revoked the root on chain; it must be rebuilt and anchored again."""


def _enum_values(enum_class: type[enum.Enum]) -> list[str]:
    return [member.value for member in enum_class]


class Epoch(Base):
    """One settlement period."""

    __tablename__ = "epochs"

    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    status: Mapped[EpochStatus] = mapped_column(
        Enum(EpochStatus, name="epoch_status", values_callable=_enum_values), nullable=False
    )
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    emission: Mapped[int] = mapped_column(TokenAmount, nullable=False)
    """Tokens to allocate: the schedule's amount plus any rollover, in base units."""
    rollover: Mapped[int] = mapped_column(TokenAmount, nullable=False, default=0)
    """Part of `emission` carried from earlier epochs that had no points."""
    total_points: Mapped[int | None] = mapped_column(BigInteger)
    allocated: Mapped[int | None] = mapped_column(TokenAmount)
    """Tokens allocated to contributors; equals `emission` unless no points were earned."""
    claims_root: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    contributions_root: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    total_entitled: Mapped[int | None] = mapped_column(TokenAmount)
    """Sum of every cumulative entitlement in the claims tree."""
    anchor_tx_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    anchor_block: Mapped[int | None] = mapped_column(BigInteger)
    activates_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = utc_now_column()


class Allocation(Base):
    """Tokens one contributor earned in one epoch, pro rata to their points."""

    __tablename__ = "allocations"

    epoch: Mapped[int] = mapped_column(ForeignKey("epochs.number"), primary_key=True)
    contributor: Mapped[str] = mapped_column(ForeignKey("contributors.address"), primary_key=True)
    points: Mapped[int] = mapped_column(BigInteger, nullable=False)
    tokens: Mapped[int] = mapped_column(TokenAmount, nullable=False)


class Entitlement(Base):
    """A contributor's cumulative entitlement as published in an epoch's claims tree."""

    __tablename__ = "entitlements"

    epoch: Mapped[int] = mapped_column(ForeignKey("epochs.number"), primary_key=True)
    contributor: Mapped[str] = mapped_column(ForeignKey("contributors.address"), primary_key=True)
    cumulative_amount: Mapped[int] = mapped_column(TokenAmount, nullable=False)
    debt: Mapped[int] = mapped_column(TokenAmount, nullable=False, default=0)
    """Debits not yet recovered because the published amount may not fall below what was claimed."""


class EntitlementDebit(Base):
    """Tokens to take back from a contributor because a session of a closed epoch was withdrawn."""

    __tablename__ = "entitlement_debits"

    session_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("sessions.session_id"), primary_key=True
    )
    contributor: Mapped[str] = mapped_column(ForeignKey("contributors.address"), nullable=False)
    session_epoch: Mapped[int] = mapped_column(ForeignKey("epochs.number"), nullable=False)
    tokens: Mapped[int] = mapped_column(TokenAmount, nullable=False)
    """floor(session points * epoch emission / epoch points): what the session earned."""
    applied_epoch: Mapped[int | None] = mapped_column(Integer)
    """Epoch whose claims tree first includes the debit."""
    created_at: Mapped[datetime] = utc_now_column()


class MerkleTreeRecord(Base):
    """A built tree of one epoch: `claims` or `contributions`."""

    __tablename__ = "merkle_trees"

    epoch: Mapped[int] = mapped_column(ForeignKey("epochs.number"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    root: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    leaf_count: Mapped[int] = mapped_column(Integer, nullable=False)
    dump: Mapped[str] = mapped_column(String, nullable=False)
    """The tree in the OpenZeppelin `standard-v1` dump format, as JSON text."""


class MerkleLeaf(Base):
    """One leaf with its proof, so any proof is served without rebuilding the tree."""

    __tablename__ = "merkle_leaves"

    epoch: Mapped[int] = mapped_column(ForeignKey("epochs.number"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(66), primary_key=True)
    """The contributor address for claims leaves, the session UUID for contribution leaves."""
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    value: Mapped[list] = mapped_column(JSONB, nullable=False)
    """Leaf values as in the dump: decimal strings for integers, hex for bytes."""
    proof: Mapped[list] = mapped_column(JSONB, nullable=False)
    """Sibling hashes from leaf to root, as 0x hex strings."""
