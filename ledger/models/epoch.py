"""Epochs, their token allocations and the cumulative entitlements published in claims trees."""

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Enum,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Uuid,
)
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
    """Tokens one contributor earned in one epoch, pro rata to their points.

    Inserted in bulk from the journal when the epoch closes. It has no foreign keys, because
    PostgreSQL would check them row by row (see migration 0003).
    """

    __tablename__ = "allocations"
    __table_args__ = (Index("ix_allocations_contributor_epoch", "contributor", "epoch"),)

    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    contributor: Mapped[str] = mapped_column(String(42), primary_key=True)
    points: Mapped[int] = mapped_column(BigInteger, nullable=False)
    tokens: Mapped[int] = mapped_column(TokenAmount, nullable=False)


class Entitlement(Base):
    """A contributor's cumulative entitlement as published in an epoch's claims tree.

    Inserted in bulk from allocations and the previous epoch's rows when the epoch is built.
    It has no foreign keys, for the same reason as Allocation.
    """

    __tablename__ = "entitlements"
    __table_args__ = (Index("ix_entitlements_contributor_epoch", "contributor", "epoch"),)

    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    contributor: Mapped[str] = mapped_column(String(42), primary_key=True)
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
    """A built tree of one epoch: `claims` or `contributions`.

    Its nodes are in `merkle_node_chunks` and its leaves in `merkle_leaves`, from which any
    proof and the `standard-v1` dump are read without rebuilding the tree.
    """

    __tablename__ = "merkle_trees"

    epoch: Mapped[int] = mapped_column(ForeignKey("epochs.number"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    root: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    leaf_count: Mapped[int] = mapped_column(Integer, nullable=False)
    """Number of leaves; the tree has 2 * leaf_count - 1 nodes."""


class MerkleNodeChunk(Base):
    """A run of consecutive nodes of a stored tree, in the `@openzeppelin/merkle-tree` layout.

    Chunk c contains nodes c * NODES_PER_CHUNK onwards as concatenated 32-byte hashes, and
    node 0 is the root. The column is stored uncompressed out of line (STORAGE EXTERNAL), so
    PostgreSQL's substring() reads one node by fetching only the TOAST chunk that contains it.
    Rows are deleted with their tree.
    """

    __tablename__ = "merkle_node_chunks"
    __table_args__ = (
        ForeignKeyConstraint(
            ["epoch", "kind"], ["merkle_trees.epoch", "merkle_trees.kind"], ondelete="CASCADE"
        ),
    )

    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    chunk: Mapped[int] = mapped_column(Integer, primary_key=True)
    nodes: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class MerkleLeaf(Base):
    """One leaf of a stored tree: its value and the index of the node that contains its hash.

    Written in bulk by COPY together with its tree. It has no foreign key, because that would
    cost one check per row.
    """

    __tablename__ = "merkle_leaves"

    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    """The account's 20 bytes for claims leaves, the session UUID's 16 bytes for contributions."""
    tree_index: Mapped[int] = mapped_column(Integer, nullable=False)
    """Index of the leaf's node in the tree; the proof is read from the sibling nodes above it."""
    value: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    """`abi.encode` of the leaf value, whose double keccak256 is the leaf hash."""
