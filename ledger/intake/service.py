"""Session intake: validate, accept or reject, score and journal, idempotently on `session_id`."""

import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session as DbSession

from ledger.config import Settings
from ledger.contributors.service import ensure_contributors, lock_contributors, sharing_at
from ledger.epochs.service import lock_open_epoch_shared, open_epoch_number
from ledger.errors import Conflict
from ledger.intake.schemas import SessionResult, SessionSubmission
from ledger.intake.validation import RejectionReason, check_payload
from ledger.journal.service import credit_points
from ledger.models import CreditedContent, Session, SessionStatus
from ledger.scoring.policy import ScoreInputs
from ledger.scoring.service import score_with_cap

logger = logging.getLogger(__name__)

RATE_WINDOW = timedelta(hours=1)


class SessionConflict(Conflict):
    """A different payload arrived under a session id that is already recorded."""

    code = "session_conflict"


def result_of(session: Session, *, replayed: bool = False) -> SessionResult:
    """Return the API result describing a stored session."""
    return SessionResult(
        session_id=session.session_id,
        status=session.status.value,
        reason=session.reason,
        points=session.points,
        policy_version=session.policy_version,
        epoch=session.epoch,
        replayed=replayed,
    )


def submit_sessions(
    db: DbSession, submissions: list[SessionSubmission], *, settings: Settings, now: datetime
) -> list[SessionResult | SessionConflict]:
    """Take a batch of sessions in the caller's transaction and return one outcome per item.

    An item whose `session_id` is known with a different payload yields a `SessionConflict` in its
    place (the others are still processed); the same payload again yields the first result.
    """
    lock_open_epoch_shared(db)
    epoch = open_epoch_number(db)
    contributors = [submission.contributor for submission in submissions]
    ensure_contributors(db, contributors)
    lock_contributors(db, contributors)

    outcomes: list[SessionResult | SessionConflict] = []
    for submission in submissions:
        outcomes.append(_submit_one(db, submission, settings=settings, now=now, epoch=epoch))
    return outcomes


def _replay(existing: Session, payload_hash: bytes) -> SessionResult | SessionConflict:
    if existing.payload_hash != payload_hash:
        logger.warning("intake.session.conflict session_id=%s", existing.session_id)
        return SessionConflict(
            f"session {existing.session_id} was already submitted with a different payload: "
            "use a new session_id for a new session",
            session_id=str(existing.session_id),
        )
    return result_of(existing, replayed=True)


def _submit_one(
    db: DbSession, submission: SessionSubmission, *, settings: Settings, now: datetime, epoch: int
) -> SessionResult | SessionConflict:
    payload_hash = submission.payload_hash()
    existing = db.scalar(select(Session).where(Session.session_id == submission.session_id))
    if existing is not None:
        return _replay(existing, payload_hash)

    reason = check_payload(
        submission,
        now=now,
        max_clock_skew=timedelta(seconds=settings.max_clock_skew_seconds),
        sensitive_categories=frozenset(settings.sensitive_categories),
    )
    if reason is None and not sharing_at(db, contributor=submission.contributor, at=submission.started_at):
        reason = RejectionReason.SHARING_PAUSED
    if reason is None and _over_rate_limit(db, submission.contributor, settings=settings, now=now):
        # Not stored: the limit is transient, so the same session may be sent again later.
        logger.info(
            "intake.session.rate_limited session_id=%s contributor=%s",
            submission.session_id,
            submission.contributor,
        )
        return SessionResult(
            session_id=submission.session_id, status="rejected", reason=RejectionReason.RATE_LIMITED
        )

    inserted = db.scalar(
        insert(Session)
        .values(
            session_id=submission.session_id,
            contributor=submission.contributor,
            started_at=submission.started_at,
            ended_at=submission.ended_at,
            active_seconds=submission.active_seconds,
            clicks=submission.clicks,
            keystrokes=submission.keystrokes,
            scrolls=submission.scrolls,
            navigations=submission.navigations,
            categories=submission.categories,
            content_hash=submission.content_hash_bytes,
            client_version=submission.client_version,
            payload_hash=payload_hash,
            status=SessionStatus.REJECTED if reason else SessionStatus.ACCEPTED,
            reason=reason.value if reason else None,
            received_at=now,
        )
        .on_conflict_do_nothing(index_elements=[Session.session_id])
        .returning(Session.session_id)
    )
    if inserted is None:
        # Another transaction stored this id between our read and our insert.
        raced = db.scalar(
            select(Session).where(Session.session_id == submission.session_id).execution_options(
                populate_existing=True
            )
        )
        assert raced is not None
        return _replay(raced, payload_hash)

    if reason is None:
        credited = db.scalar(
            insert(CreditedContent)
            .values(content_hash=submission.content_hash_bytes, session_id=submission.session_id)
            .on_conflict_do_nothing()
            .returning(CreditedContent.session_id)
        )
        if credited is None:
            reason = RejectionReason.DUPLICATE_CONTENT

    if reason is not None:
        db.execute(
            update(Session)
            .where(Session.session_id == submission.session_id)
            .values(status=SessionStatus.REJECTED, reason=reason.value)
        )
        logger.info("intake.session.rejected session_id=%s reason=%s", submission.session_id, reason.value)
        return SessionResult(session_id=submission.session_id, status="rejected", reason=reason.value)

    return _score(db, submission, epoch=epoch)


def _over_rate_limit(db: DbSession, contributor: str, *, settings: Settings, now: datetime) -> bool:
    recent = db.scalar(
        select(func.count())
        .select_from(Session)
        .where(Session.contributor == contributor, Session.received_at > now - RATE_WINDOW)
    )
    return (recent or 0) >= settings.rate_limit_sessions_per_hour


def _score(db: DbSession, submission: SessionSubmission, *, epoch: int) -> SessionResult:
    inputs = ScoreInputs(
        active_seconds=submission.active_seconds,
        clicks=submission.clicks,
        keystrokes=submission.keystrokes,
        scrolls=submission.scrolls,
        navigations=submission.navigations,
        categories=tuple(submission.categories),
    )
    score = score_with_cap(
        db, contributor=submission.contributor, started_at=submission.started_at, inputs=inputs
    )
    if score.points > 0:
        credit_points(
            db,
            idempotency_key=f"score:{submission.session_id}",
            epoch=epoch,
            contributor=submission.contributor,
            points=score.points,
            session_id=submission.session_id,
        )
    db.execute(
        update(Session)
        .where(Session.session_id == submission.session_id)
        .values(
            status=SessionStatus.SCORED,
            reason=score.reason,
            points=score.points,
            policy_version=score.policy_version,
            score_inputs=inputs.to_json(),
            epoch=epoch,
        )
    )
    logger.info(
        "intake.session.scored session_id=%s epoch=%s points=%s policy=%s",
        submission.session_id,
        epoch,
        score.points,
        score.policy_version,
    )
    return SessionResult(
        session_id=submission.session_id,
        status="scored",
        reason=score.reason,
        points=score.points,
        policy_version=score.policy_version,
        epoch=epoch,
    )


def get_session(db: DbSession, session_id: uuid.UUID) -> Session | None:
    """Return a stored session by id."""
    return db.get(Session, session_id)
