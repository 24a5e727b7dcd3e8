"""Create the ledger schema, its integrity guards and scoring policy v1.

Revision ID: 0001
Revises:
Create Date: 2026-12-04 20:05:19.364033
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from ledger.scoring.policy import POLICY_V1_EFFECTIVE_FROM, POLICY_V1_RULES

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table('access_tokens',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('contributor', sa.String(length=42), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_access_tokens'))
    )
    op.create_table('api_keys',
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('scope', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('key_id', name=op.f('pk_api_keys'))
    )
    op.create_table('chain_claims',
    sa.Column('tx_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('account', sa.String(length=42), nullable=False),
    sa.Column('amount', sa.Numeric(precision=78, scale=0), nullable=False),
    sa.Column('cumulative_amount', sa.Numeric(precision=78, scale=0), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('tx_hash', 'log_index', name=op.f('pk_chain_claims'))
    )
    op.create_index(op.f('ix_chain_claims_account'), 'chain_claims', ['account'], unique=False)
    op.create_table('contributors',
    sa.Column('address', sa.String(length=42), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('address', name=op.f('pk_contributors'))
    )
    op.create_table('epochs',
    sa.Column('number', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('status', sa.Enum('open', 'closed', 'built', 'submitted', 'anchored', 'active', 'revoked', name='epoch_status'), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('emission', sa.Numeric(precision=78, scale=0), nullable=False),
    sa.Column('rollover', sa.Numeric(precision=78, scale=0), nullable=False),
    sa.Column('total_points', sa.BigInteger(), nullable=True),
    sa.Column('allocated', sa.Numeric(precision=78, scale=0), nullable=True),
    sa.Column('claims_root', sa.LargeBinary(length=32), nullable=True),
    sa.Column('contributions_root', sa.LargeBinary(length=32), nullable=True),
    sa.Column('total_entitled', sa.Numeric(precision=78, scale=0), nullable=True),
    sa.Column('anchor_tx_hash', sa.LargeBinary(length=32), nullable=True),
    sa.Column('anchor_block', sa.BigInteger(), nullable=True),
    sa.Column('activates_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('number', name=op.f('pk_epochs'))
    )
    op.create_table('indexer_cursors',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_indexer_cursors'))
    )
    op.create_table('point_balances',
    sa.Column('account', sa.String(length=64), nullable=False),
    sa.Column('balance', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('account', name=op.f('pk_point_balances'))
    )
    op.create_table('scoring_policies',
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('effective_from', sa.DateTime(timezone=True), nullable=False),
    sa.Column('rules', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('version', name=op.f('pk_scoring_policies'))
    )
    op.create_table('sign_in_nonces',
    sa.Column('nonce', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('nonce', name=op.f('pk_sign_in_nonces'))
    )
    op.create_table('allocations',
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('contributor', sa.String(length=42), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('tokens', sa.Numeric(precision=78, scale=0), nullable=False),
    sa.ForeignKeyConstraint(['contributor'], ['contributors.address'], name=op.f('fk_allocations_contributor_contributors')),
    sa.ForeignKeyConstraint(['epoch'], ['epochs.number'], name=op.f('fk_allocations_epoch_epochs')),
    sa.PrimaryKeyConstraint('epoch', 'contributor', name=op.f('pk_allocations'))
    )
    op.create_table('anchor_transactions',
    sa.Column('tx_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('sender', sa.String(length=42), nullable=False),
    sa.Column('nonce', sa.BigInteger(), nullable=False),
    sa.Column('raw_tx', sa.LargeBinary(), nullable=False),
    sa.Column('max_fee_per_gas', sa.Numeric(precision=78, scale=0), nullable=False),
    sa.Column('max_priority_fee_per_gas', sa.Numeric(precision=78, scale=0), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('block_number', sa.BigInteger(), nullable=True),
    sa.Column('block_hash', sa.LargeBinary(length=32), nullable=True),
    sa.Column('gas_used', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['epoch'], ['epochs.number'], name=op.f('fk_anchor_transactions_epoch_epochs')),
    sa.PrimaryKeyConstraint('tx_hash', name=op.f('pk_anchor_transactions'))
    )
    op.create_index(op.f('ix_anchor_transactions_epoch'), 'anchor_transactions', ['epoch'], unique=False)
    op.create_table('consent_events',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('contributor', sa.String(length=42), nullable=False),
    sa.Column('sharing', sa.Boolean(), nullable=False),
    sa.Column('effective_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['contributor'], ['contributors.address'], name=op.f('fk_consent_events_contributor_contributors')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_events'))
    )
    op.create_index('ix_consent_events_contributor_effective', 'consent_events', ['contributor', 'effective_at'], unique=False)
    op.create_table('daily_points',
    sa.Column('contributor', sa.String(length=42), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['contributor'], ['contributors.address'], name=op.f('fk_daily_points_contributor_contributors')),
    sa.PrimaryKeyConstraint('contributor', 'day', name=op.f('pk_daily_points'))
    )
    op.create_table('entitlements',
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('contributor', sa.String(length=42), nullable=False),
    sa.Column('cumulative_amount', sa.Numeric(precision=78, scale=0), nullable=False),
    sa.Column('debt', sa.Numeric(precision=78, scale=0), nullable=False),
    sa.ForeignKeyConstraint(['contributor'], ['contributors.address'], name=op.f('fk_entitlements_contributor_contributors')),
    sa.ForeignKeyConstraint(['epoch'], ['epochs.number'], name=op.f('fk_entitlements_epoch_epochs')),
    sa.PrimaryKeyConstraint('epoch', 'contributor', name=op.f('pk_entitlements'))
    )
    op.create_table('merkle_leaves',
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('key', sa.String(length=66), nullable=False),
    sa.Column('leaf_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('value', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('proof', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.ForeignKeyConstraint(['epoch'], ['epochs.number'], name=op.f('fk_merkle_leaves_epoch_epochs')),
    sa.PrimaryKeyConstraint('epoch', 'kind', 'key', name=op.f('pk_merkle_leaves'))
    )
    op.create_table('merkle_trees',
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('root', sa.LargeBinary(length=32), nullable=False),
    sa.Column('leaf_count', sa.Integer(), nullable=False),
    sa.Column('dump', sa.String(), nullable=False),
    sa.ForeignKeyConstraint(['epoch'], ['epochs.number'], name=op.f('fk_merkle_trees_epoch_epochs')),
    sa.PrimaryKeyConstraint('epoch', 'kind', name=op.f('pk_merkle_trees'))
    )
    op.create_table('sessions',
    sa.Column('session_id', sa.Uuid(), nullable=False),
    sa.Column('contributor', sa.String(length=42), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('active_seconds', sa.Integer(), nullable=False),
    sa.Column('clicks', sa.Integer(), nullable=False),
    sa.Column('keystrokes', sa.Integer(), nullable=False),
    sa.Column('scrolls', sa.Integer(), nullable=False),
    sa.Column('navigations', sa.Integer(), nullable=False),
    sa.Column('categories', postgresql.ARRAY(sa.String(length=32)), nullable=False),
    sa.Column('content_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('client_version', sa.String(length=64), nullable=False),
    sa.Column('payload_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('status', sa.Enum('accepted', 'scored', 'rejected', 'withdrawn', name='session_status'), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('points', sa.BigInteger(), nullable=True),
    sa.Column('policy_version', sa.Integer(), nullable=True),
    sa.Column('score_inputs', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('epoch', sa.Integer(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['contributor'], ['contributors.address'], name=op.f('fk_sessions_contributor_contributors')),
    sa.ForeignKeyConstraint(['policy_version'], ['scoring_policies.version'], name=op.f('fk_sessions_policy_version_scoring_policies')),
    sa.PrimaryKeyConstraint('session_id', name=op.f('pk_sessions'))
    )
    op.create_index('ix_sessions_contributor_received', 'sessions', ['contributor', 'received_at'], unique=False)
    op.create_index('ix_sessions_epoch_status', 'sessions', ['epoch', 'status'], unique=False)
    op.create_table('credited_content',
    sa.Column('content_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('session_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['session_id'], ['sessions.session_id'], name=op.f('fk_credited_content_session_id_sessions')),
    sa.PrimaryKeyConstraint('content_hash', name=op.f('pk_credited_content'))
    )
    op.create_table('entitlement_debits',
    sa.Column('session_id', sa.Uuid(), nullable=False),
    sa.Column('contributor', sa.String(length=42), nullable=False),
    sa.Column('session_epoch', sa.Integer(), nullable=False),
    sa.Column('tokens', sa.Numeric(precision=78, scale=0), nullable=False),
    sa.Column('applied_epoch', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['contributor'], ['contributors.address'], name=op.f('fk_entitlement_debits_contributor_contributors')),
    sa.ForeignKeyConstraint(['session_epoch'], ['epochs.number'], name=op.f('fk_entitlement_debits_session_epoch_epochs')),
    sa.ForeignKeyConstraint(['session_id'], ['sessions.session_id'], name=op.f('fk_entitlement_debits_session_id_sessions')),
    sa.PrimaryKeyConstraint('session_id', name=op.f('pk_entitlement_debits'))
    )
    op.create_table('journal_entries',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('idempotency_key', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Uuid(), nullable=True),
    sa.Column('reverses_id', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['reverses_id'], ['journal_entries.id'], name=op.f('fk_journal_entries_reverses_id_journal_entries')),
    sa.ForeignKeyConstraint(['session_id'], ['sessions.session_id'], name=op.f('fk_journal_entries_session_id_sessions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_journal_entries')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_journal_entries_idempotency_key'))
    )
    op.create_index('ix_journal_entries_epoch', 'journal_entries', ['epoch'], unique=False)
    op.create_table('journal_postings',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('entry_id', sa.BigInteger(), nullable=False),
    sa.Column('account', sa.String(length=64), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['journal_entries.id'], name=op.f('fk_journal_postings_entry_id_journal_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_journal_postings'))
    )
    op.create_index('ix_journal_postings_account', 'journal_postings', ['account'], unique=False)
    op.create_index(op.f('ix_journal_postings_entry_id'), 'journal_postings', ['entry_id'], unique=False)

    _create_guards()
    _seed_policy_v1()


# Journal rows are append-only, and every entry's postings must sum to zero when its
# transaction commits (a deferred constraint trigger, so an entry's legs can be inserted one by one).
GUARDS_SQL = """
CREATE FUNCTION ledger_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on % is not allowed: the journal is append-only, post a correcting entry',
        TG_OP, TG_TABLE_NAME;
END;
$$;

CREATE TRIGGER journal_entries_append_only BEFORE UPDATE OR DELETE ON journal_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER journal_postings_append_only BEFORE UPDATE OR DELETE ON journal_postings
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER consent_events_append_only BEFORE UPDATE OR DELETE ON consent_events
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();

CREATE FUNCTION ledger_check_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    total numeric;
BEGIN
    SELECT coalesce(sum(amount), 0) INTO total FROM journal_postings WHERE entry_id = NEW.entry_id;
    IF total <> 0 THEN
        RAISE EXCEPTION 'journal entry % does not balance: its postings sum to %', NEW.entry_id, total;
    END IF;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER journal_postings_balanced AFTER INSERT ON journal_postings
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_entry_balanced();

CREATE UNIQUE INDEX uq_epochs_single_open ON epochs ((true)) WHERE status = 'open';
"""


def _create_guards() -> None:
    op.execute(GUARDS_SQL)


def _seed_policy_v1() -> None:
    policies = sa.table(
        "scoring_policies",
        sa.column("version", sa.Integer),
        sa.column("effective_from", sa.DateTime(timezone=True)),
        sa.column("rules", postgresql.JSONB),
    )
    op.bulk_insert(
        policies,
        [{"version": 1, "effective_from": POLICY_V1_EFFECTIVE_FROM, "rules": POLICY_V1_RULES}],
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS uq_epochs_single_open")
    op.drop_index(op.f('ix_journal_postings_entry_id'), table_name='journal_postings')
    op.drop_index('ix_journal_postings_account', table_name='journal_postings')
    op.drop_table('journal_postings')
    op.drop_index('ix_journal_entries_epoch', table_name='journal_entries')
    op.drop_table('journal_entries')
    op.drop_table('entitlement_debits')
    op.drop_table('credited_content')
    op.drop_index('ix_sessions_epoch_status', table_name='sessions')
    op.drop_index('ix_sessions_contributor_received', table_name='sessions')
    op.drop_table('sessions')
    op.drop_table('merkle_trees')
    op.drop_table('merkle_leaves')
    op.drop_table('entitlements')
    op.drop_table('daily_points')
    op.drop_index('ix_consent_events_contributor_effective', table_name='consent_events')
    op.drop_table('consent_events')
    op.drop_index(op.f('ix_anchor_transactions_epoch'), table_name='anchor_transactions')
    op.drop_table('anchor_transactions')
    op.drop_table('allocations')
    op.drop_table('sign_in_nonces')
    op.drop_table('scoring_policies')
    op.drop_table('point_balances')
    op.drop_table('indexer_cursors')
    op.drop_table('epochs')
    op.drop_table('contributors')
    op.drop_index(op.f('ix_chain_claims_account'), table_name='chain_claims')
    op.drop_table('chain_claims')
    op.drop_table('api_keys')
    op.drop_table('access_tokens')
    op.execute("DROP FUNCTION IF EXISTS ledger_check_entry_balanced()")
    op.execute("DROP FUNCTION IF EXISTS ledger_reject_change()")
    op.execute("DROP TYPE IF EXISTS session_status")
    op.execute("DROP TYPE IF EXISTS epoch_status")

