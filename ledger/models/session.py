"""Recorded-session metadata as received from a collector, and its outcome."""

import enum
import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Uuid,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from ledger.models.base import Base, utc_now_column


class SessionStatus(enum.StrEnum):
    """Lifecycle state of a session."""

    ACCEPTED = "accepted"
    """Passed validation, not yet scored."""
    SCORED = "scored"
    """Scored and journaled."""
    REJECTED = "rejected"
    """Failed validation, with the cause in `reason`."""
    WITHDRAWN = "withdrawn"
    """Deleted by its contributor; any points were reversed."""


class Session(Base):
    """One recorded session. It has no column for a URL, page text or the recording itself."""

    __tablename__ = "sessions"
    __table_args__ = (
        Index("ix_sessions_contributor_received", "contributor", "received_at"),
        Index("ix_sessions_epoch_status", "epoch", "status"),
        Index("ix_sessions_contributor_epoch", "contributor", "epoch", postgresql_include=["status", "points"]),
    )

    session_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    """Client-chosen UUID; submission is idempotent on it."""
    contributor: Mapped[str] = mapped_column(ForeignKey("contributors.address"), nullable=False)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    ended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    active_seconds: Mapped[int] = mapped_column(Integer, nullable=False)
    clicks: Mapped[int] = mapped_column(Integer, nullable=False)
    keystrokes: Mapped[int] = mapped_column(Integer, nullable=False)
    scrolls: Mapped[int] = mapped_column(Integer, nullable=False)
    navigations: Mapped[int] = mapped_column(Integer, nullable=False)
    categories: Mapped[list[str]] = mapped_column(ARRAY(String(32)), nullable=False)
    content_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    """SHA-256 of the encrypted recording, which is stored elsewhere."""
    client_version: Mapped[str] = mapped_column(String(64), nullable=False)
    payload_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    """SHA-256 of the canonical payload, to distinguish a retry from a conflicting resubmission."""

    status: Mapped[SessionStatus] = mapped_column(
        Enum(SessionStatus, name="session_status", values_callable=lambda e: [m.value for m in e]),
        nullable=False,
    )
    reason: Mapped[str | None] = mapped_column(String(64))
    """Rejection reason code, or `daily_cap` on a session scored 0 by the cap."""
    points: Mapped[int | None] = mapped_column(BigInteger)
    policy_version: Mapped[int | None] = mapped_column(ForeignKey("scoring_policies.version"))
    score_inputs: Mapped[dict | None] = mapped_column(JSONB)
    """Everything the policy read, so anyone can recompute the score."""
    epoch: Mapped[int | None] = mapped_column(Integer)
    """Epoch that was open when the session was scored."""
    received_at: Mapped[datetime] = utc_now_column()
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CreditedContent(Base):
    """Content hashes that earned credit once; a second session with the same hash is a duplicate."""

    __tablename__ = "credited_content"

    content_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sessions.session_id"), nullable=False)


class DailyPoints(Base):
    """Points credited per contributor per UTC day, for the daily cap."""

    __tablename__ = "daily_points"

    contributor: Mapped[str] = mapped_column(ForeignKey("contributors.address"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    points: Mapped[int] = mapped_column(BigInteger, nullable=False)
