"""Index allocations and entitlements by contributor for the earnings read.

Both tables are keyed by (epoch, contributor), which serves the epoch close but not a read of one
contributor across epochs: without these indexes that read scans every row.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 21:15:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_allocations_contributor_epoch", "allocations", ["contributor", "epoch"])
    op.create_index("ix_entitlements_contributor_epoch", "entitlements", ["contributor", "epoch"])
    # Covering the columns the earnings read sums, so it is an index-only scan.
    op.create_index(
        "ix_sessions_contributor_epoch",
        "sessions",
        ["contributor", "epoch"],
        postgresql_include=["status", "points"],
    )


def downgrade() -> None:
    op.drop_index("ix_sessions_contributor_epoch", table_name="sessions")
    op.drop_index("ix_entitlements_contributor_epoch", table_name="entitlements")
    op.drop_index("ix_allocations_contributor_epoch", table_name="allocations")
