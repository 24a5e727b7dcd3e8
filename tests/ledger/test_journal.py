"""Double-entry journal: balanced entries, unique idempotency keys, balances and drift checks."""

import subprocess
import sys
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ledger.db import unit_of_work
from ledger.journal.service import Posting, UnbalancedEntry, balance_of, check_journal, post_entry
from ledger.models import EMISSION_ACCOUNT
from tests.ledger.factories import new_address


def test_entry_moves_points_and_balances(db):
    contributor = new_address()

    post_entry(db, idempotency_key=f"test:{uuid.uuid4()}", kind="score", epoch=1,
               postings=[Posting(EMISSION_ACCOUNT, -40), Posting(contributor, 40)])

    assert balance_of(db, contributor) == 40
    assert check_journal(db).ok


def test_same_idempotency_key_posts_once(db):
    contributor = new_address()
    key = f"test:{uuid.uuid4()}"
    postings = [Posting(EMISSION_ACCOUNT, -7), Posting(contributor, 7)]

    first = post_entry(db, idempotency_key=key, kind="score", epoch=1, postings=postings)
    second = post_entry(db, idempotency_key=key, kind="score", epoch=1, postings=postings)

    assert first is not None
    assert second is None
    assert balance_of(db, contributor) == 7


def test_unbalanced_entry_rejected_in_python(db):
    with pytest.raises(UnbalancedEntry):
        post_entry(db, idempotency_key="test:unbalanced", kind="score", epoch=1,
                   postings=[Posting(EMISSION_ACCOUNT, -5), Posting(new_address(), 6)])


def test_unbalanced_entry_rejected_by_database(committing_factory):
    with pytest.raises(DBAPIError, match="does not balance"):
        with unit_of_work(committing_factory) as db:
            entry_id = db.execute(
                text("INSERT INTO journal_entries (idempotency_key, kind, epoch) VALUES (:key, 'score', 1) RETURNING id"),
                {"key": f"test:{uuid.uuid4()}"},
            ).scalar_one()
            db.execute(text("INSERT INTO journal_postings (entry_id, account, amount) VALUES (:id, 'emission', -3)"), {"id": entry_id})


def test_postings_cannot_be_deleted(db):
    post_entry(db, idempotency_key=f"test:{uuid.uuid4()}", kind="score", epoch=1,
               postings=[Posting(EMISSION_ACCOUNT, -1), Posting(new_address(), 1)])

    with pytest.raises(DBAPIError, match="append-only"):
        with db.begin_nested():
            db.execute(text("DELETE FROM journal_postings"))


def test_check_reports_drift(db):
    contributor = new_address()
    post_entry(db, idempotency_key=f"test:{uuid.uuid4()}", kind="score", epoch=1,
               postings=[Posting(EMISSION_ACCOUNT, -9), Posting(contributor, 9)])
    db.execute(text("UPDATE point_balances SET balance = balance + 1 WHERE account = :a"), {"a": contributor})

    result = check_journal(db)

    assert not result.ok
    assert result.drift[contributor] == (10, 9)


def test_check_command_exits_nonzero_on_drift(committing_factory, isolated_database_url):
    contributor = new_address()
    with unit_of_work(committing_factory) as db:
        post_entry(db, idempotency_key=f"test:{uuid.uuid4()}", kind="score", epoch=1,
                   postings=[Posting(EMISSION_ACCOUNT, -2), Posting(contributor, 2)])
    env = {"DATABASE_URL": isolated_database_url, "PATH": "/usr/bin:/bin"}
    clean = subprocess.run([sys.executable, "-m", "ledger.cli", "check"], env=env, capture_output=True, text=True)
    with unit_of_work(committing_factory) as db:
        db.execute(text("UPDATE point_balances SET balance = balance + 5 WHERE account = :a"), {"a": contributor})
    drifted = subprocess.run([sys.executable, "-m", "ledger.cli", "check"], env=env, capture_output=True, text=True)
    with unit_of_work(committing_factory) as db:
        db.execute(text("UPDATE point_balances SET balance = balance - 5 WHERE account = :a"), {"a": contributor})

    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert drifted.returncode == 1
    assert f"drift {contributor}" in drifted.stdout
