"""Double-entry points journal and the balances maintained from it."""

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ledger.models.base import Base, utc_now_column

#: The account every point is issued from; its balance is minus all points in circulation.
EMISSION_ACCOUNT = "emission"


class JournalEntry(Base):
    """One balanced posting group. Entries are never updated or deleted."""

    __tablename__ = "journal_entries"
    __table_args__ = (Index("ix_journal_entries_epoch", "epoch"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), nullable=False, unique=True)
    """For example `score:<session_id>`: a retried job can never post twice."""
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    """`score` or `reversal`."""
    epoch: Mapped[int] = mapped_column(Integer, nullable=False)
    """Epoch whose allocation the points count towards."""
    session_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sessions.session_id"))
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("journal_entries.id"))
    """The entry this one corrects, for reversals."""
    created_at: Mapped[datetime] = utc_now_column()


class JournalPosting(Base):
    """One leg of an entry: `amount` points into `account` (negative means out of it)."""

    __tablename__ = "journal_postings"
    __table_args__ = (Index("ix_journal_postings_account", "account"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("journal_entries.id"), nullable=False, index=True)
    account: Mapped[str] = mapped_column(String(64), nullable=False)
    """`emission` or a contributor's checksummed address."""
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)


class PointBalance(Base):
    """Running balance per account, updated in the same transaction as the postings."""

    __tablename__ = "point_balances"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger, nullable=False)
