"""Property tests: random sequences of ledger operations keep every accounting invariant."""

import hashlib
import uuid
from datetime import timedelta

from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session as DbSession

from ledger.contributors.service import set_sharing
from ledger.epochs.build import build_epoch
from ledger.epochs.service import close_epoch, ensure_open_epoch
from ledger.errors import NotFound
from ledger.intake.service import submit_sessions
from ledger.intake.withdrawal import withdraw_session
from ledger.journal.service import check_journal
from ledger.models import Allocation, ChainClaim, Entitlement, Epoch, EpochStatus
from tests.ledger.factories import submission

CONTRIBUTORS = [
    "0x" + hashlib.sha256(f"property-{index}".encode()).hexdigest()[:40] for index in range(4)
]

operations = st.lists(
    st.one_of(
        st.tuples(st.just("submit"), st.integers(0, 3), st.integers(0, 5), st.integers(1, 300)),
        st.tuples(st.just("resubmit"), st.integers(0, 50)),
        st.tuples(st.just("pause"), st.integers(0, 3)),
        st.tuples(st.just("resume"), st.integers(0, 3)),
        st.tuples(st.just("withdraw"), st.integers(0, 50)),
        st.tuples(st.just("close"),),
        st.tuples(st.just("claim"), st.integers(0, 3)),
    ),
    min_size=1,
    max_size=25,
)


def _claim_all_published(db: DbSession, contributor: str) -> None:
    """Record an on-chain claim of the contributor's latest published entitlement."""
    latest = db.scalar(select(func.max(Entitlement.epoch)).where(Entitlement.contributor == contributor))
    if latest is None:
        return
    amount = db.scalar(select(Entitlement.cumulative_amount).where(Entitlement.epoch == latest, Entitlement.contributor == contributor))
    db.add(
        ChainClaim(
            tx_hash=uuid.uuid4().bytes * 2,
            log_index=0,
            block_number=1,
            block_hash=bytes(32),
            account=contributor,
            amount=0,
            cumulative_amount=amount,
            epoch=latest,
        )
    )
    db.flush()


@hypothesis_settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=operations)
def test_invariants_hold_after_any_sequence(engine, settings, now, steps):
    from eth_utils import to_checksum_address

    contributors = [to_checksum_address(address) for address in CONTRIBUTORS]
    with engine.connect() as connection:
        transaction = connection.begin()
        db = DbSession(bind=connection, join_transaction_mode="create_savepoint")
        try:
            clock = now
            ensure_open_epoch(db, settings=settings, now=clock)
            sent = []
            for step in steps:
                clock += timedelta(minutes=7)
                kind = step[0]
                if kind == "submit":
                    _, who, content, minutes = step
                    item = submission(
                        contributors[who],
                        clock - timedelta(minutes=minutes + 2),
                        ended_at=(clock - timedelta(minutes=1)).isoformat(),
                        active_seconds=minutes * 60,
                        content_hash="0x" + hashlib.sha256(f"{content}".encode()).hexdigest(),
                    )
                    sent.append(item)
                    submit_sessions(db, [item], settings=settings, now=clock)
                elif kind == "resubmit" and sent:
                    submit_sessions(db, [sent[step[1] % len(sent)]], settings=settings, now=clock)
                elif kind in ("pause", "resume"):
                    set_sharing(db, contributor=contributors[step[1]], sharing=kind == "resume", at=clock)
                elif kind == "withdraw" and sent:
                    item = sent[step[1] % len(sent)]
                    try:
                        withdraw_session(db, session_id=item.session_id, contributor=item.contributor, now=clock)
                    except NotFound:
                        pass  # the session was rejected as rate limited and never stored
                elif kind == "close":
                    closed = close_epoch(db, settings=settings, now=clock, force=True)
                    build_epoch(db, closed.number)
                elif kind == "claim":
                    _claim_all_published(db, contributors[step[1]])

            assert check_journal(db).ok
            for epoch in db.scalars(select(Epoch).where(Epoch.status != EpochStatus.OPEN)):
                allocated = db.scalar(select(func.coalesce(func.sum(Allocation.tokens), 0)).where(Allocation.epoch == epoch.number))
                assert allocated == (epoch.emission if epoch.total_points else 0)
                assert allocated == epoch.allocated
            claimed = dict(db.execute(select(ChainClaim.account, func.max(ChainClaim.cumulative_amount)).group_by(ChainClaim.account)).all())
            for row in db.scalars(select(Entitlement)):
                later_claims = claimed.get(row.contributor, 0)
                if row.epoch == db.scalar(select(func.max(Entitlement.epoch))):
                    assert row.cumulative_amount >= later_claims
            for epoch in db.scalars(select(Epoch).where(Epoch.status == EpochStatus.BUILT)):
                entitled = db.scalar(select(func.coalesce(func.sum(Entitlement.cumulative_amount), 0)).where(Entitlement.epoch == epoch.number))
                assert entitled == epoch.total_entitled
                assert entitled <= epoch.number * settings.emission_per_epoch
        finally:
            db.close()
            transaction.rollback()
