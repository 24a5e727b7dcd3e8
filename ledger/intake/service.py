"""Session intake: validate, accept or reject, score and journal, idempotently on `session_id`.

A batch is processed set-wise. Every lookup (known ids, consent history, recent counts for the
rate limit, credited content, the day's points) is one query for the whole batch. The rules run
in memory in request order, and the writes are a handful of bulk statements. Per-contributor
advisory locks, taken in address order, make the in-memory view exact for the transaction.
"""

import enum
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker

from ledger.bulk import copy_rows
from ledger.config import Settings
from ledger.contributors.service import ensure_contributors, lock_contributors
from ledger.epochs.service import lock_open_epoch_shared, open_epoch_number
from ledger.errors import Conflict, NotFound
from ledger.intake.schemas import SessionResult, SessionSubmission
from ledger.intake.validation import RejectionReason, check_payload
from ledger.journal.service import Posting, post_entries
from ledger.models import (
    EMISSION_ACCOUNT,
    DailyPoints,
    ScoringPolicy,
    Session,
    SessionStatus,
)
from ledger.scoring.policy import ScoreInputs, apply_daily_cap, score_session

logger = logging.getLogger(__name__)

RATE_WINDOW = timedelta(hours=1)
#: Transient PostgreSQL failures after which the whole batch is retried from the start.
RETRYABLE_ERRORS = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)

#: Unique constraints another batch may win a race for; the next attempt reads the stored row.
RACED_CONSTRAINTS = frozenset({"pk_sessions", "pk_credited_content"})
MAX_ATTEMPTS = 5


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


def _conflict(session_id: uuid.UUID) -> SessionConflict:
    logger.warning("intake.session.conflict session_id=%s", session_id)
    return SessionConflict(
        f"session {session_id} was already submitted with a different payload: "
        "use a new session_id for a new session",
        session_id=str(session_id),
    )


@dataclass
class _Pending:
    """A submission that passed the payload rules and will be stored in this batch."""

    submission: SessionSubmission
    payload_hash: bytes
    reason: RejectionReason | None
    result: SessionResult | SessionConflict | None = None


# The lookups of a batch start from the batch's own keys and probe an index once per key, each
# through a LATERAL subquery that PostgreSQL cannot turn into a join. With a plain `IN (...)`,
# the planner scanned the whole table while it was small. Once psycopg prepared the statement,
# PostgreSQL kept that plan as the table grew: in the intake benchmark, a fifth of the
# database's time went to comparing addresses and hashes row by row.
_STORED_SESSION_IDS_SQL = text(
    """
    SELECT k.session_id FROM unnest(CAST(:ids AS uuid[])) AS k(session_id)
    CROSS JOIN LATERAL (SELECT 1 FROM sessions s WHERE s.session_id = k.session_id LIMIT 1) AS stored
    """
)

_RECENT_COUNTS_SQL = text(
    """
    SELECT k.contributor, recent.count FROM unnest(CAST(:contributors AS varchar[])) AS k(contributor)
    CROSS JOIN LATERAL (
        SELECT count(*) AS count FROM sessions s WHERE s.contributor = k.contributor AND s.received_at > :since
    ) AS recent
    WHERE recent.count > 0
    """
)

_CREDITED_HASHES_SQL = text(
    """
    SELECT k.content_hash FROM unnest(CAST(:hashes AS bytea[])) AS k(content_hash)
    CROSS JOIN LATERAL (SELECT 1 FROM credited_content c WHERE c.content_hash = k.content_hash LIMIT 1) AS credited
    """
)

_DAY_TOTALS_SQL = text(
    """
    SELECT k.contributor, k.day, d.points
    FROM unnest(CAST(:contributors AS varchar[]), CAST(:days AS date[])) AS k(contributor, day)
    CROSS JOIN LATERAL (
        SELECT points FROM daily_points d WHERE d.contributor = k.contributor AND d.day = k.day LIMIT 1
    ) AS d
    """
)

_CONSENT_EVENTS_SQL = text(
    """
    SELECT k.contributor, e.effective_at, e.id, e.sharing FROM unnest(CAST(:contributors AS varchar[])) AS k(contributor)
    CROSS JOIN LATERAL (
        SELECT effective_at, id, sharing FROM consent_events c
        WHERE c.contributor = k.contributor ORDER BY effective_at, id
    ) AS e
    """
)


class _Consent:
    """Consent history of the batch's contributors, to tell whether sharing was on at an instant."""

    def __init__(self, db: DbSession, contributors: list[str]) -> None:
        self._events: dict[str, list[tuple[datetime, int, bool]]] = defaultdict(list)
        rows = db.execute(_CONSENT_EVENTS_SQL, {"contributors": contributors})
        for contributor, effective_at, event_id, sharing in rows:
            self._events[contributor].append((effective_at, event_id, sharing))

    def sharing_at(self, contributor: str, at: datetime) -> bool:
        """Return the state of the latest event at or before `at`; sharing when there is none."""
        state = True
        for effective_at, _, sharing in self._events.get(contributor, ()):
            if effective_at > at:
                break
            state = sharing
        return state


class _Policies:
    """Every scoring policy, newest first, to pick the one in force at a session's start."""

    def __init__(self, db: DbSession) -> None:
        self._policies = list(
            db.scalars(select(ScoringPolicy).order_by(ScoringPolicy.effective_from.desc(), ScoringPolicy.version.desc()))
        )

    def at(self, started_at: datetime) -> ScoringPolicy:
        for policy in self._policies:
            if policy.effective_from <= started_at:
                return policy
        raise NotFound(f"no scoring policy was in force at {started_at.isoformat()}")


def submit_sessions(
    db: DbSession, submissions: list[SessionSubmission], *, settings: Settings, now: datetime
) -> list[SessionResult | SessionConflict]:
    """Take a batch of sessions in the caller's transaction and return one outcome per item.

    An item whose `session_id` is known with a different payload yields a `SessionConflict` in its
    place, and the other items are still processed. The same payload again yields the first result.

    The open epoch is locked in shared mode and the batch's contributors row by row, in address
    order, so the consent, rate limit and daily cap checks read state no other batch can change
    before this transaction ends. Session ids and content hashes are not locked: should another
    batch store one of them first, the primary key of `sessions` or `credited_content` rejects
    this transaction, and `submit_with_retry` runs the batch again to replay or reject it.
    """
    if not submissions:
        return []
    lock_open_epoch_shared(db)
    epoch = open_epoch_number(db)
    contributors = sorted({submission.contributor for submission in submissions})
    ensure_contributors(db, contributors)
    lock_contributors(db, contributors)
    session_ids = [submission.session_id for submission in submissions]

    stored_ids = list(db.scalars(_STORED_SESSION_IDS_SQL, {"ids": session_ids}))
    known = {}
    if stored_ids:
        known = {
            row.session_id: row
            for row in db.scalars(
                select(Session).where(Session.session_id.in_(stored_ids)).execution_options(populate_existing=True)
            )
        }
    consent = _Consent(db, contributors)
    recent = dict(db.execute(_RECENT_COUNTS_SQL, {"contributors": contributors, "since": now - RATE_WINDOW}).all())
    skew = timedelta(seconds=settings.max_clock_skew_seconds)
    sensitive = frozenset(settings.sensitive_categories)

    outcomes: list[SessionResult | SessionConflict | _Pending] = []
    in_batch: dict[uuid.UUID, _Pending] = {}
    for submission in submissions:
        payload_hash = submission.payload_hash()
        stored = known.get(submission.session_id)
        if stored is not None:
            outcomes.append(result_of(stored, replayed=True) if stored.payload_hash == payload_hash else _conflict(stored.session_id))
            continue
        earlier = in_batch.get(submission.session_id)
        if earlier is not None:
            outcomes.append(earlier if earlier.payload_hash == payload_hash else _conflict(submission.session_id))
            continue

        reason = check_payload(submission, now=now, max_clock_skew=skew, sensitive_categories=sensitive)
        if reason is None and not consent.sharing_at(submission.contributor, submission.started_at):
            reason = RejectionReason.SHARING_PAUSED
        if reason is None and recent.get(submission.contributor, 0) >= settings.rate_limit_sessions_per_hour:
            # Not stored: the limit is transient, so the same session may be sent again later.
            logger.info(
                "intake.session.rate_limited session_id=%s contributor=%s", submission.session_id, submission.contributor
            )
            outcomes.append(
                SessionResult(session_id=submission.session_id, status="rejected", reason=RejectionReason.RATE_LIMITED.value)
            )
            continue
        recent[submission.contributor] = recent.get(submission.contributor, 0) + 1
        pending = _Pending(submission, payload_hash, reason)
        in_batch[submission.session_id] = pending
        outcomes.append(pending)

    pending_items = list(in_batch.values())
    _reject_duplicate_content(db, pending_items)
    _store(db, pending_items, epoch=epoch, now=now)

    final: list[SessionResult | SessionConflict] = []
    answered: set[uuid.UUID] = set()
    for outcome in outcomes:
        if not isinstance(outcome, _Pending):
            final.append(outcome)
            continue
        assert outcome.result is not None
        session_id = outcome.submission.session_id
        if session_id in answered and isinstance(outcome.result, SessionResult):
            # The same payload twice in one batch: the second copy repeats the first result.
            final.append(outcome.result.model_copy(update={"replayed": True}))
        else:
            final.append(outcome.result)
        answered.add(session_id)
    return final


def _reject_duplicate_content(db: DbSession, pending: list[_Pending]) -> None:
    """Mark sessions whose content hash is already credited, or earlier in this batch."""
    accepted = [item for item in pending if item.reason is None]
    if not accepted:
        return
    hashes = [item.submission.content_hash_bytes for item in accepted]
    credited = {bytes(content_hash) for content_hash in db.scalars(_CREDITED_HASHES_SQL, {"hashes": hashes})}
    for item in accepted:
        content_hash = item.submission.content_hash_bytes
        if content_hash in credited:
            item.reason = RejectionReason.DUPLICATE_CONTENT
        credited.add(content_hash)


def _store(db: DbSession, pending: list[_Pending], *, epoch: int, now: datetime) -> None:
    """Score the batch's new sessions, then write sessions, credits, day totals and journal."""
    if not pending:
        return
    accepted = [item for item in pending if item.reason is None]
    scores, entries = _score(db, accepted, epoch=epoch)

    rows = []
    for item in pending:
        row = _session_row(item, now=now)
        score = scores.get(item.submission.session_id)
        if score is not None:
            row.update(score)
        else:
            item.result = SessionResult(session_id=item.submission.session_id, status="rejected", reason=item.reason.value)
            logger.info("intake.session.rejected session_id=%s reason=%s", item.submission.session_id, item.reason.value)
        rows.append(row)
    copy_rows(db, "sessions", SESSION_COLUMNS, ([_copy_value(row[column]) for column in SESSION_COLUMNS] for row in rows))
    copy_rows(
        db,
        "credited_content",
        ("content_hash", "session_id"),
        ((item.submission.content_hash_bytes, item.submission.session_id) for item in accepted),
    )
    post_entries(db, entries)


def _copy_value(value: object) -> object:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return Jsonb(value)
    return value


SESSION_COLUMNS = (
    "session_id",
    "contributor",
    "started_at",
    "ended_at",
    "active_seconds",
    "clicks",
    "keystrokes",
    "scrolls",
    "navigations",
    "categories",
    "content_hash",
    "client_version",
    "payload_hash",
    "status",
    "reason",
    "points",
    "policy_version",
    "score_inputs",
    "epoch",
    "received_at",
)


def _session_row(item: _Pending, *, now: datetime) -> dict:
    submission = item.submission
    return {
        "session_id": submission.session_id,
        "contributor": submission.contributor,
        "started_at": submission.started_at,
        "ended_at": submission.ended_at,
        "active_seconds": submission.active_seconds,
        "clicks": submission.clicks,
        "keystrokes": submission.keystrokes,
        "scrolls": submission.scrolls,
        "navigations": submission.navigations,
        "categories": submission.categories,
        "content_hash": submission.content_hash_bytes,
        "client_version": submission.client_version,
        "payload_hash": item.payload_hash,
        "status": SessionStatus.REJECTED if item.reason else SessionStatus.ACCEPTED,
        "reason": item.reason.value if item.reason else None,
        "points": None,
        "policy_version": None,
        "score_inputs": None,
        "epoch": None,
        "received_at": now,
    }


def _score(db: DbSession, items: list[_Pending], *, epoch: int) -> tuple[dict[uuid.UUID, dict], list[dict]]:
    """Score accepted sessions in request order under each one's policy and the daily cap.

    Writes the day totals; returns the scored columns of each session row and the journal
    entries to post once the session rows exist.
    """
    if not items:
        return {}, []
    policies = _Policies(db)
    days = {(item.submission.contributor, item.submission.started_at.astimezone(UTC).date()) for item in items}
    keys = sorted(days)
    used: dict[tuple[str, date], int] = {
        (contributor, day): points
        for contributor, day, points in db.execute(
            _DAY_TOTALS_SQL, {"contributors": [key[0] for key in keys], "days": [key[1] for key in keys]}
        )
    }
    added: dict[tuple[str, date], int] = defaultdict(int)

    scores: dict[uuid.UUID, dict] = {}
    entries = []
    for item in items:
        submission = item.submission
        inputs = ScoreInputs(
            active_seconds=submission.active_seconds,
            clicks=submission.clicks,
            keystrokes=submission.keystrokes,
            scrolls=submission.scrolls,
            navigations=submission.navigations,
            categories=tuple(submission.categories),
        )
        policy = policies.at(submission.started_at)
        breakdown = score_session(policy.rules, inputs)
        points, reason = breakdown.points, breakdown.zero_reason
        if points > 0:
            key = (submission.contributor, submission.started_at.astimezone(UTC).date())
            points = apply_daily_cap(points, already_today=used.get(key, 0) + added[key], cap=policy.rules["daily_cap_points"])
            if points < breakdown.points:
                reason = "daily_cap"
            added[key] += points
        if points > 0:
            entries.append(
                {
                    "idempotency_key": f"score:{submission.session_id}",
                    "kind": "score",
                    "epoch": epoch,
                    "session_id": submission.session_id,
                    "postings": [Posting(EMISSION_ACCOUNT, -points), Posting(submission.contributor, points)],
                }
            )
        scores[submission.session_id] = {
            "status": SessionStatus.SCORED,
            "reason": reason,
            "points": points,
            "policy_version": policy.version,
            "score_inputs": inputs.to_json(),
            "epoch": epoch,
        }
        item.result = SessionResult(
            session_id=submission.session_id,
            status="scored",
            reason=reason,
            points=points,
            policy_version=policy.version,
            epoch=epoch,
        )
        logger.info(
            "intake.session.scored session_id=%s epoch=%s points=%s policy=%s",
            submission.session_id,
            epoch,
            points,
            policy.version,
        )

    day_rows = [{"contributor": c, "day": d, "points": p} for (c, d), p in sorted(added.items()) if p > 0]
    if day_rows:
        statement = insert(DailyPoints)
        db.execute(
            statement.on_conflict_do_update(
                index_elements=[DailyPoints.contributor, DailyPoints.day],
                set_={"points": DailyPoints.points + statement.excluded.points},
            ),
            day_rows,
        )
    return scores, entries


def is_retryable(error: BaseException) -> bool:
    """Return whether a database error is worth running the batch again.

    That is a deadlock, a serialization failure, or a session id or content hash that another
    batch stored first. COPY raises psycopg's errors unwrapped, statements raise SQLAlchemy's.
    """
    cause = error.orig if isinstance(error, DBAPIError) else error
    if isinstance(cause, RETRYABLE_ERRORS):
        return True
    return isinstance(cause, pg_errors.UniqueViolation) and cause.diag.constraint_name in RACED_CONSTRAINTS


def submit_with_retry(
    factory: sessionmaker[DbSession], submissions: list[SessionSubmission], *, settings: Settings, now: datetime
) -> list[SessionResult | SessionConflict]:
    """Run `submit_sessions` in its own transaction, running the batch again when it lost a race.

    Should PostgreSQL abort a batch as a deadlock victim, on a serialization failure or because
    another batch stored one of its sessions or content hashes first, the batch runs again from
    the start, at most MAX_ATTEMPTS times. The next attempt replays what the other batch stored.
    """
    for attempt in range(1, MAX_ATTEMPTS + 1):
        with factory() as db:
            try:
                outcomes = submit_sessions(db, submissions, settings=settings, now=now)
                db.commit()
                return outcomes
            except (DBAPIError, psycopg.Error) as error:
                db.rollback()
                if not is_retryable(error) or attempt == MAX_ATTEMPTS:
                    raise
                cause = error.orig if isinstance(error, DBAPIError) else error
                logger.warning(
                    "intake.batch.retry attempt=%s error_type=%s constraint=%s",
                    attempt,
                    type(cause).__name__,
                    getattr(getattr(cause, "diag", None), "constraint_name", None),
                )
    raise AssertionError("unreachable")
