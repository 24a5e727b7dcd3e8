"""Rules a session must pass before it is scored, each failing with a stable reason code."""

import enum
from datetime import datetime, timedelta

from ledger.intake.schemas import SessionSubmission


class RejectionReason(enum.StrEnum):
    """Rejection reason code of a session. Values are part of the public API."""

    ENDED_BEFORE_STARTED = "ended_before_started"
    START_IN_FUTURE = "start_in_future"
    ACTIVE_EXCEEDS_WALL_TIME = "active_exceeds_wall_time"
    NEGATIVE_COUNT = "negative_count"
    SENSITIVE_CATEGORY = "sensitive_category"
    SHARING_PAUSED = "sharing_paused"
    RATE_LIMITED = "rate_limited"
    DUPLICATE_CONTENT = "duplicate_content"


def check_payload(
    submission: SessionSubmission,
    *,
    now: datetime,
    max_clock_skew: timedelta,
    sensitive_categories: frozenset[str],
) -> RejectionReason | None:
    """Return the first rule the payload alone breaks, or None when it passes them all."""
    if submission.ended_at < submission.started_at:
        return RejectionReason.ENDED_BEFORE_STARTED
    if submission.started_at > now + max_clock_skew:
        return RejectionReason.START_IN_FUTURE
    counts = (
        submission.active_seconds,
        submission.clicks,
        submission.keystrokes,
        submission.scrolls,
        submission.navigations,
    )
    if any(count < 0 for count in counts):
        return RejectionReason.NEGATIVE_COUNT
    wall_seconds = (submission.ended_at - submission.started_at).total_seconds()
    if submission.active_seconds > wall_seconds:
        return RejectionReason.ACTIVE_EXCEEDS_WALL_TIME
    if sensitive_categories.intersection(submission.categories):
        return RejectionReason.SENSITIVE_CATEGORY
    return None
