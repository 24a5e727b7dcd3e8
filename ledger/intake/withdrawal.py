"""Withdrawal: a contributor deletes one of their sessions, and its credit is taken back."""

import logging
import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session as DbSession

from ledger.contributors.service import lock_contributors
from ledger.epochs.allocation import tokens_for_points
from ledger.epochs.service import lock_open_epoch_shared
from ledger.errors import NotFound
from ledger.journal.service import reverse_entry
from ledger.models import EntitlementDebit, Epoch, EpochStatus, JournalEntry, Session, SessionStatus

logger = logging.getLogger(__name__)


def withdraw_session(
    db: DbSession, *, session_id: uuid.UUID, contributor: str, now: datetime
) -> Session:
    """Withdraw a session of `contributor` from any state; withdrawing twice changes nothing.

    Points of a session whose epoch is still open are reversed in that epoch. When the epoch is
    closed already, the points are reversed too and the tokens the session earned at that epoch's
    rate become a debit on the contributor's entitlement in the next claims tree.

    Raises:
        NotFound: when no session with this id belongs to `contributor` (another contributor's
            session is reported the same way, so ids of others cannot be probed).
    """
    lock_open_epoch_shared(db)
    lock_contributors(db, [contributor])
    session = db.scalar(
        select(Session).where(Session.session_id == session_id).with_for_update().execution_options(
            populate_existing=True
        )
    )
    if session is None or session.contributor != contributor:
        raise NotFound(f"session {session_id} not found for {contributor}", code="session_not_found")
    if session.status == SessionStatus.WITHDRAWN:
        return session

    if session.status == SessionStatus.SCORED and session.points:
        score_entry_id = db.scalar(
            select(JournalEntry.id).where(JournalEntry.idempotency_key == f"score:{session_id}")
        )
        if score_entry_id is not None:
            reverse_entry(db, entry_id=score_entry_id, idempotency_key=f"withdraw:{session_id}")
        epoch = db.get(Epoch, session.epoch)
        if epoch is not None and epoch.status != EpochStatus.OPEN:
            tokens = tokens_for_points(
                session.points,
                epoch_emission=epoch.allocated or 0,
                epoch_points=epoch.total_points or 0,
            )
            db.execute(
                insert(EntitlementDebit)
                .values(
                    session_id=session_id,
                    contributor=contributor,
                    session_epoch=epoch.number,
                    tokens=tokens,
                )
                .on_conflict_do_nothing()
            )
            logger.info(
                "withdrawal.debit session_id=%s epoch=%s tokens=%s", session_id, epoch.number, tokens
            )

    # NOTE: the points still count towards the contributor's daily cap for that day; a
    # withdrawal frees no room for more credit on the same day.
    previous = session.status
    session.status = SessionStatus.WITHDRAWN
    session.withdrawn_at = now
    # The contributor asked for deletion: drop the activity metadata, keep only what the ledger
    # needs to account for the reversal (ids, points, epoch, content hash).
    session.score_inputs = None
    session.categories = []
    session.clicks = session.keystrokes = session.scrolls = session.navigations = 0
    session.active_seconds = 0
    db.flush()
    logger.info("withdrawal.done session_id=%s previous_status=%s", session_id, previous.value)
    return session
