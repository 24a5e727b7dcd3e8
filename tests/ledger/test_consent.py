"""Consent: pausing and resuming are append-only events that decide which sessions are accepted."""

from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ledger.contributors.service import consent_history, set_sharing, sharing_at
from ledger.epochs.service import ensure_open_epoch
from ledger.intake.service import submit_sessions
from tests.ledger.factories import new_address, submission


@pytest.fixture(autouse=True)
def open_epoch(db, settings, now):
    ensure_open_epoch(db, settings=settings, now=now - timedelta(days=2))


def test_sharing_follows_latest_event_before_instant(db, now):
    contributor = new_address()
    set_sharing(db, contributor=contributor, sharing=False, at=now - timedelta(hours=3))
    set_sharing(db, contributor=contributor, sharing=True, at=now - timedelta(hours=1))

    assert sharing_at(db, contributor=contributor, at=now - timedelta(hours=4)) is True
    assert sharing_at(db, contributor=contributor, at=now - timedelta(hours=2)) is False
    assert sharing_at(db, contributor=contributor, at=now) is True
    assert [event.sharing for event in consent_history(db, contributor=contributor)] == [False, True]


def test_session_started_while_paused_rejected(db, settings, now):
    contributor = new_address()
    set_sharing(db, contributor=contributor, sharing=False, at=now - timedelta(hours=3))
    set_sharing(db, contributor=contributor, sharing=True, at=now - timedelta(hours=1))
    during = submission(contributor, now - timedelta(hours=2))
    after = submission(contributor, now - timedelta(minutes=30), ended_at=(now - timedelta(minutes=15)).isoformat())

    results = submit_sessions(db, [during, after], settings=settings, now=now)

    assert results[0].reason == "sharing_paused"
    assert results[1].status == "scored"


def test_consent_events_cannot_be_updated(db, now):
    contributor = new_address()
    set_sharing(db, contributor=contributor, sharing=False, at=now)

    with pytest.raises(DBAPIError, match="append-only"):
        with db.begin_nested():
            db.execute(text("UPDATE consent_events SET sharing = true"))
