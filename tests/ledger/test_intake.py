"""Intake against PostgreSQL: validation, scoring, journaling and idempotency."""

from datetime import timedelta

import pytest
from pydantic import ValidationError

from ledger.epochs.service import ensure_open_epoch
from ledger.intake.schemas import SessionSubmission
from ledger.intake.service import SessionConflict, submit_sessions
from ledger.journal.service import balance_of, check_journal
from ledger.models import EMISSION_ACCOUNT
from tests.ledger.factories import new_address, session_payload, submission


@pytest.fixture(autouse=True)
def open_epoch(db, settings, now):
    ensure_open_epoch(db, settings=settings, now=now)


def submit_one(db, settings, now, item):
    [outcome] = submit_sessions(db, [item], settings=settings, now=now)
    return outcome


def test_valid_session_scored_and_journaled(db, settings, now):
    contributor = new_address()
    result = submit_one(db, settings, now, submission(contributor, now - timedelta(hours=1)))

    # 10 minutes, 450 actions -> 45 a minute -> 10000 bp; shopping 11000 bp.
    assert result.status == "scored"
    assert result.points == 10 * 100 * 11000 // 10000
    assert balance_of(db, contributor) == result.points
    assert balance_of(db, EMISSION_ACCOUNT) == -result.points
    assert check_journal(db).ok


def test_resubmission_replays_first_result(db, settings, now):
    item = submission(new_address(), now - timedelta(hours=1))
    first = submit_one(db, settings, now, item)
    second = submit_one(db, settings, now, item)

    assert second.replayed
    assert second.points == first.points
    assert balance_of(db, item.contributor) == first.points


def test_different_payload_same_id_conflicts(db, settings, now):
    contributor = new_address()
    item = submission(contributor, now - timedelta(hours=1))
    submit_one(db, settings, now, item)
    changed = submission(contributor, now - timedelta(hours=1), session_id=str(item.session_id), clicks=1)

    outcome = submit_one(db, settings, now, changed)

    assert isinstance(outcome, SessionConflict)
    assert outcome.status_code == 409


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"ended_at": "2026-06-01T10:00:00+00:00"}, "ended_before_started"),
        ({"started_at": "2026-06-01T13:00:00+00:00", "ended_at": "2026-06-01T13:20:00+00:00"}, "start_in_future"),
        ({"active_seconds": 3600}, "active_exceeds_wall_time"),
        ({"clicks": -1}, "negative_count"),
        ({"categories": ["shopping", "banking"]}, "sensitive_category"),
    ],
)
def test_invalid_sessions_rejected_with_reason(db, settings, now, overrides, reason):
    contributor = new_address()
    item = SessionSubmission.model_validate(
        session_payload(contributor, now - timedelta(hours=1, minutes=30), **overrides)
    )

    result = submit_one(db, settings, now, item)

    assert result.status == "rejected"
    assert result.reason == reason
    assert balance_of(db, contributor) == 0


def test_duplicate_content_hash_rejected(db, settings, now):
    first = submission(new_address(), now - timedelta(hours=1))
    copy = submission(new_address(), now - timedelta(hours=1), content_hash=first.content_hash)
    submit_one(db, settings, now, first)

    result = submit_one(db, settings, now, copy)

    assert result.reason == "duplicate_content"


def test_daily_cap_scores_excess_zero(db, settings, now):
    contributor = new_address()
    day_start = now.replace(hour=0)
    results = [
        submit_one(
            db,
            settings,
            now,
            submission(
                contributor,
                day_start + timedelta(minutes=45 * i),
                ended_at=(day_start + timedelta(minutes=45 * i + 41)).isoformat(),
                active_seconds=40 * 60,
                clicks=1000,
                categories=["productivity"],
            ),
        )
        for i in range(6)
    ]

    assert sum(r.points for r in results) == 30_000
    assert results[-1].points == 0
    assert results[-1].reason == "daily_cap"


def test_unknown_field_rejected_by_schema(now):
    payload = session_payload(new_address(), now, url="https://example.org/private")

    with pytest.raises(ValidationError, match="url"):
        SessionSubmission.model_validate(payload)


def test_naive_timestamp_rejected(now):
    payload = session_payload(new_address(), now, started_at="2026-06-01T10:00:00")

    with pytest.raises(ValidationError, match="timezone"):
        SessionSubmission.model_validate(payload)


def test_wrong_checksum_rejected_lower_case_accepted(now):
    address = new_address()
    wrong = address[:2] + "".join(c.swapcase() if c.isalpha() else c for c in address[2:4]) + address[4:]

    assert SessionSubmission.model_validate(session_payload(address.lower(), now)).contributor == address
    if wrong != address and wrong[2:] != wrong[2:].lower() and wrong[2:] != wrong[2:].upper():
        with pytest.raises(ValidationError, match="checksum"):
            SessionSubmission.model_validate(session_payload(wrong, now))


def test_rate_limit_rejects_without_storing(db, settings, now):
    limited = settings.model_copy(update={"rate_limit_sessions_per_hour": 3})
    contributor = new_address()
    items = [submission(contributor, now - timedelta(hours=2, minutes=i)) for i in range(5)]

    results = submit_sessions(db, items, settings=limited, now=now)
    retried = submit_sessions(db, [items[4]], settings=limited, now=now + timedelta(hours=1, minutes=1))

    assert [r.reason for r in results[3:]] == ["rate_limited", "rate_limited"]
    assert retried[0].status == "scored"


def test_sensitive_categories_come_from_settings(db, settings, now):
    custom = settings.model_copy(update={"sensitive_categories": ("shopping",)})
    item = submission(new_address(), now - timedelta(hours=1), categories=["shopping"])
    banking = submission(new_address(), now - timedelta(hours=1), categories=["banking"])

    results = submit_sessions(db, [item, banking], settings=custom, now=now)

    assert results[0].reason == "sensitive_category"
    assert results[1].status == "scored"


def test_same_batch_duplicates_credit_once(db, settings, now):
    first = submission(new_address(), now - timedelta(hours=1))
    same_hash = submission(new_address(), now - timedelta(hours=1), content_hash=first.content_hash)

    results = submit_sessions(db, [first, same_hash, first], settings=settings, now=now)

    assert results[0].status == "scored"
    assert results[1].reason == "duplicate_content"
    assert results[2].replayed
    assert results[2].points == results[0].points
    assert balance_of(db, first.contributor) == results[0].points
