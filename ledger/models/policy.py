"""Scoring policies stored as data, one row a version."""

from datetime import datetime

from sqlalchemy import DateTime, Integer
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from ledger.models.base import Base, utc_now_column


class ScoringPolicy(Base):
    """A published scoring policy. Sessions that start at or after `effective_from` use it."""

    __tablename__ = "scoring_policies"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    effective_from: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    rules: Mapped[dict] = mapped_column(JSONB, nullable=False)
    """Thresholds and multipliers in integer units (seconds, basis points, points)."""
    created_at: Mapped[datetime] = utc_now_column()
