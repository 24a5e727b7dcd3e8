"""Contributors and their append-only consent history."""

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ledger.models.base import Base, utc_now_column


class Contributor(Base):
    """A person who shares sessions, identified by their EVM address."""

    __tablename__ = "contributors"

    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    """EIP-55 checksummed address."""
    created_at: Mapped[datetime] = utc_now_column()


class ConsentEvent(Base):
    """One pause or resume of sharing. Rows are only ever inserted."""

    __tablename__ = "consent_events"
    __table_args__ = (Index("ix_consent_events_contributor_effective", "contributor", "effective_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    contributor: Mapped[str] = mapped_column(ForeignKey("contributors.address"), nullable=False)
    sharing: Mapped[bool] = mapped_column(Boolean, nullable=False)
    """True when sharing resumes, False when it pauses."""
    effective_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    """From this instant on the new state applies to sessions that start."""
    recorded_at: Mapped[datetime] = utc_now_column()
