"""Add the per-signer nonce table and the block hash of the indexer cursor.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 20:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signer_nonces",
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("next_nonce", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "address", name=op.f("pk_signer_nonces")),
    )
    op.add_column("indexer_cursors", sa.Column("block_hash", sa.LargeBinary(length=32), nullable=True))


def downgrade() -> None:
    op.drop_column("indexer_cursors", "block_hash")
    op.drop_table("signer_nonces")
