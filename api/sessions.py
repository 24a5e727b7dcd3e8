"""Session endpoints: collectors submit, contributors review and withdraw their own."""

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ValidationError
from sqlalchemy import func, select

from api.deps import CollectorDep, ContributorDep, DbDep, NowDep, StateDep
from api.metrics import count_submissions
from ledger.errors import Conflict, NotFound
from ledger.intake.schemas import BatchResult, SessionBatch, SessionResult, SessionSubmission
from ledger.intake.service import SessionConflict, submit_with_retry
from ledger.intake.withdrawal import withdraw_session
from ledger.models import Session

router = APIRouter(tags=["sessions"])

ERROR_RESPONSES = {
    401: {"description": "Missing or invalid credentials"},
    422: {"description": "Malformed request; the message names the field"},
}


class SessionView(BaseModel):
    """A session as shown to its contributor."""

    session_id: uuid.UUID
    contributor: str
    status: str
    reason: str | None
    points: int | None
    epoch: int | None
    policy_version: int | None
    started_at: datetime
    ended_at: datetime
    active_seconds: int
    categories: list[str]
    content_hash: str
    received_at: datetime
    withdrawn_at: datetime | None


class SessionPage(BaseModel):
    """One page of sessions, newest first."""

    items: list[SessionView]
    total: int
    limit: int
    offset: int


def view_of(session: Session) -> SessionView:
    """Return the API view of a stored session."""
    return SessionView(
        session_id=session.session_id,
        contributor=session.contributor,
        status=session.status.value,
        reason=session.reason,
        points=session.points,
        epoch=session.epoch,
        policy_version=session.policy_version,
        started_at=session.started_at,
        ended_at=session.ended_at,
        active_seconds=session.active_seconds,
        categories=list(session.categories),
        content_hash="0x" + session.content_hash.hex(),
        received_at=session.received_at,
        withdrawn_at=session.withdrawn_at,
    )


@router.post(
    "/sessions",
    response_model=SessionResult,
    status_code=status.HTTP_200_OK,
    responses={**ERROR_RESPONSES, 409: {"description": "Known session_id with a different payload"}},
)
def submit_session(submission: SessionSubmission, state: StateDep, now: NowDep, collector: CollectorDep) -> SessionResult:
    """Submit one session's metadata. Sending the same payload again returns the first result."""
    [outcome] = submit_with_retry(state.factory, [submission], settings=state.settings, now=now)
    if isinstance(outcome, SessionConflict):
        count_submissions([SessionResult(session_id=submission.session_id, status="conflict", reason=outcome.code)])
        raise outcome
    count_submissions([outcome])
    return outcome


@router.post("/sessions/batch", response_model=BatchResult, responses=ERROR_RESPONSES)
def submit_batch(batch: SessionBatch, state: StateDep, now: NowDep, collector: CollectorDep) -> BatchResult:
    """Submit up to 1,000 sessions. Each item gets its own result; an invalid item stores nothing."""
    parsed: list[SessionSubmission] = []
    positions: list[int] = []
    results: list[SessionResult | None] = [None] * len(batch.sessions)
    for index, item in enumerate(batch.sessions):
        try:
            parsed.append(SessionSubmission.model_validate(item))
            positions.append(index)
        except ValidationError as error:
            raw_id = item.get("session_id") if isinstance(item, dict) else None
            try:
                session_id = uuid.UUID(str(raw_id)) if raw_id is not None else None
            except ValueError:
                session_id = None
            results[index] = SessionResult(
                session_id=session_id,
                status="invalid",
                reason="invalid_payload",
                errors=[{"loc": list(e["loc"]), "msg": e["msg"]} for e in error.errors()],
            )
    outcomes = submit_with_retry(state.factory, parsed, settings=state.settings, now=now) if parsed else []
    for submission, index, outcome in zip(parsed, positions, outcomes):
        if isinstance(outcome, Conflict):
            results[index] = SessionResult(
                session_id=submission.session_id,
                status="conflict",
                reason=outcome.code,
                errors=[{"msg": outcome.message}],
            )
        else:
            results[index] = outcome
    batch_results = [result for result in results if result is not None]
    count_submissions(batch_results)
    return BatchResult(results=batch_results)


@router.get("/me/sessions", response_model=SessionPage, responses=ERROR_RESPONSES)
def list_my_sessions(
    db: DbDep,
    contributor: ContributorDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> SessionPage:
    """List the signed-in contributor's sessions, newest first."""
    total = db.scalar(select(func.count()).select_from(Session).where(Session.contributor == contributor)) or 0
    rows = db.scalars(
        select(Session)
        .where(Session.contributor == contributor)
        .order_by(Session.received_at.desc(), Session.session_id)
        .limit(limit)
        .offset(offset)
    )
    return SessionPage(items=[view_of(row) for row in rows], total=total, limit=limit, offset=offset)


def _own_session(db: DbDep, session_id: uuid.UUID, contributor: str) -> Session:
    session = db.get(Session, session_id)
    if session is None or session.contributor != contributor:
        raise NotFound(f"session {session_id} not found for {contributor}", code="session_not_found")
    return session


@router.get("/me/sessions/{session_id}", response_model=SessionView, responses={**ERROR_RESPONSES, 404: {"description": "Unknown session"}})
def get_my_session(session_id: uuid.UUID, db: DbDep, contributor: ContributorDep) -> SessionView:
    """Review one of the signed-in contributor's sessions."""
    return view_of(_own_session(db, session_id, contributor))


@router.delete("/me/sessions/{session_id}", response_model=SessionView, responses={**ERROR_RESPONSES, 404: {"description": "Unknown session"}})
def delete_my_session(session_id: uuid.UUID, db: DbDep, now: NowDep, contributor: ContributorDep) -> SessionView:
    """Withdraw one of the signed-in contributor's sessions and take back its credit."""
    return view_of(withdraw_session(db, session_id=session_id, contributor=contributor, now=now))

