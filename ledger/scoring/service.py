"""Scoring policy versions: publishing a new one, and explaining a stored score step by step.

Sessions are scored in bulk by intake (`ledger.intake.service`) with the pure rules of
`ledger.scoring.policy`.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from ledger.errors import InvalidInput, NotFound
from ledger.models import ScoringPolicy, Session
from ledger.scoring.policy import (
    InvalidPolicy,
    ScoreInputs,
    score_session,
    validate_rules,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Explanation:
    """A stored score next to the same score recomputed from its stored inputs."""

    session_id: uuid.UUID
    policy_version: int
    stored_points: int
    recomputed_points: int
    capped: bool
    steps: list[str]

    @property
    def matches(self) -> bool:
        """True when recomputing gives the stored points (or the cap explains the difference)."""
        if self.capped:
            return self.stored_points <= self.recomputed_points
        return self.stored_points == self.recomputed_points


def explain_score(db: DbSession, session_id: uuid.UUID) -> Explanation:
    """Recompute a stored score step by step from its stored inputs and policy version.

    Raises:
        NotFound: when the session does not exist or was never scored.
    """
    session = db.get(Session, session_id)
    if session is None or session.policy_version is None or session.score_inputs is None:
        raise NotFound(f"session {session_id} has no stored score to explain", code="session_not_found")
    policy = db.get(ScoringPolicy, session.policy_version)
    assert policy is not None
    breakdown = score_session(policy.rules, ScoreInputs.from_json(session.score_inputs))
    capped = session.reason == "daily_cap"
    steps = list(breakdown.steps)
    if capped:
        steps.append(
            f"daily cap of {policy.rules['daily_cap_points']} points reached: "
            f"{session.points} of {breakdown.points} points credited"
        )
    return Explanation(
        session_id=session_id,
        policy_version=policy.version,
        stored_points=session.points or 0,
        recomputed_points=breakdown.points,
        capped=capped,
        steps=steps,
    )


def publish_policy(db: DbSession, *, rules: dict, effective_from: datetime, now: datetime) -> ScoringPolicy:
    """Store a new policy version that applies to sessions starting at `effective_from` or later.

    Scores already stored keep the version they were computed with; nothing is rescored.

    Raises:
        InvalidInput: when the rules are malformed, `effective_from` has no time zone, lies in the
            past (it would change how already-started sessions score), or precedes the newest policy.
    """
    if effective_from.tzinfo is None:
        raise InvalidInput(f"effective_from {effective_from.isoformat()} needs a time zone, e.g. 2027-01-01T00:00:00+00:00")
    if effective_from < now:
        raise InvalidInput(
            f"effective_from {effective_from.isoformat()} is in the past: a policy may only apply from now on"
        )
    try:
        validate_rules(rules)
    except InvalidPolicy as error:
        raise InvalidInput(str(error), code="invalid_policy") from None
    latest = db.scalar(select(ScoringPolicy).order_by(ScoringPolicy.version.desc()).limit(1).with_for_update())
    if latest is not None and effective_from <= latest.effective_from:
        raise InvalidInput(
            f"effective_from {effective_from.isoformat()} must be after policy v{latest.version}'s "
            f"{latest.effective_from.isoformat()}"
        )
    policy = ScoringPolicy(version=(latest.version if latest else 0) + 1, effective_from=effective_from, rules=rules)
    db.add(policy)
    db.flush()
    logger.info("scoring.policy.published version=%s effective_from=%s", policy.version, effective_from.isoformat())
    return policy
