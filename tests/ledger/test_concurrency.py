"""Concurrent intake and epoch close against PostgreSQL: never a double credit or allocation."""

import logging
import random
import threading
from collections import Counter
from datetime import timedelta

from sqlalchemy import func, select

from ledger.db import unit_of_work
from ledger.epochs.service import close_epoch, ensure_open_epoch
from ledger.intake.service import SessionConflict, submit_sessions, submit_with_retry
from ledger.journal.service import check_journal
from ledger.models import Allocation, Epoch, EpochStatus, JournalEntry, Session
from tests.ledger.factories import new_address, submission

CLIENTS = 8


def run_concurrently(target, count):
    errors = []
    barrier = threading.Barrier(count)

    def wrapped(index):
        try:
            barrier.wait()
            target(index)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=wrapped, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_overlapping_batches_never_credit_twice(committing_factory, settings, now):
    with unit_of_work(committing_factory) as db:
        ensure_open_epoch(db, settings=settings, now=now - timedelta(hours=3))
    contributors = [new_address() for _ in range(12)]
    pool = []
    for index in range(160):
        item = submission(contributors[index % len(contributors)], now - timedelta(hours=2, minutes=index % 50))
        pool.append(item)
    # Every fourth session reuses the content hash of the one before it, for another contributor.
    for index in range(1, len(pool), 4):
        pool[index] = submission(pool[index].contributor, pool[index].started_at, content_hash=pool[index - 1].content_hash)
    outcomes: list[list] = [[] for _ in range(CLIENTS)]

    def client(index):
        rng = random.Random(index)
        batch = rng.sample(pool, 100)
        for start in range(0, 100, 25):
            outcomes[index].extend(submit_with_retry(committing_factory, batch[start : start + 25], settings=settings, now=now))

    errors = run_concurrently(client, CLIENTS)

    assert errors == []
    assert not any(isinstance(o, SessionConflict) for results in outcomes for o in results)
    with committing_factory() as db:
        stored = db.scalar(select(func.count()).select_from(Session).where(Session.session_id.in_([p.session_id for p in pool])))
        keys = Counter(db.scalars(select(JournalEntry.idempotency_key).where(JournalEntry.idempotency_key.like("score:%"))))
        credited_hashes = Counter(
            db.scalars(select(Session.content_hash).where(Session.status == "scored", Session.session_id.in_([p.session_id for p in pool])))
        )
        journal = check_journal(db)
    submitted = {p.session_id for results in outcomes for p in results}
    assert stored == len(submitted)
    assert max(keys.values()) == 1
    assert max(credited_hashes.values()) == 1
    assert journal.ok


def test_batch_that_loses_a_race_runs_again(committing_factory, settings, now, caplog):
    caplog.set_level(logging.WARNING, logger="ledger.intake.service")
    with unit_of_work(committing_factory) as db:
        ensure_open_epoch(db, settings=settings, now=now - timedelta(hours=3))
    item = submission(new_address(), now - timedelta(hours=2))
    # Other contributors, so that no contributor lock orders the two batches.
    same_content = submission(new_address(), now - timedelta(hours=2), content_hash=item.content_hash)
    same_id = submission(new_address(), now - timedelta(hours=2), session_id=item.session_id)
    outcomes = {}

    def second_batch():
        outcomes["second"] = submit_with_retry(committing_factory, [same_content, same_id], settings=settings, now=now)

    # The first batch stores its rows and leaves its transaction open, so the second one passes
    # its checks, waits on the primary keys, fails when the first commits and runs again.
    with committing_factory() as first:
        outcomes["first"] = submit_sessions(first, [item], settings=settings, now=now)
        second = threading.Thread(target=second_batch)
        second.start()
        second.join(timeout=1)
        assert second.is_alive()
        first.commit()
    second.join(timeout=30)

    assert outcomes["first"][0].status == "scored"
    duplicate, conflict = outcomes["second"]
    assert duplicate.reason == "duplicate_content"
    assert isinstance(conflict, SessionConflict)
    assert "intake.batch.retry attempt=1 error_type=UniqueViolation" in caplog.text
    with committing_factory() as db:
        assert check_journal(db).ok


def test_concurrent_batches_of_a_thousand(committing_factory, settings, now):
    # One advisory lock per contributor, session and content hash took 3,000 of PostgreSQL's
    # 6,400 shared lock slots per batch of this size, so a few such batches at once failed.
    with unit_of_work(committing_factory) as db:
        ensure_open_epoch(db, settings=settings, now=now - timedelta(hours=3))
    batches = [
        [submission(new_address(), now - timedelta(hours=2, seconds=index)) for index in range(1000)] for _ in range(6)
    ]
    outcomes: dict[int, list] = {}

    errors = run_concurrently(
        lambda index: outcomes.update({index: submit_with_retry(committing_factory, batches[index], settings=settings, now=now)}),
        len(batches),
    )

    assert errors == []
    assert all(result.status == "scored" for results in outcomes.values() for result in results)
    assert sum(len(results) for results in outcomes.values()) == 6000


def test_two_workers_close_epoch_once(committing_factory, settings, now):
    with unit_of_work(committing_factory) as db:
        open_epoch = ensure_open_epoch(db, settings=settings, now=now - timedelta(hours=3))
        number = open_epoch.number
        submit_sessions_now = [submission(new_address(), now - timedelta(hours=2)) for _ in range(5)]
    submit_with_retry(committing_factory, submit_sessions_now, settings=settings, now=now)
    closed = []

    def worker(_):
        with unit_of_work(committing_factory) as db:
            result = close_epoch(db, settings=settings, now=now)
            if result is not None:
                closed.append(result.number)

    errors = run_concurrently(worker, 2)

    assert errors == []
    assert closed == [number]
    with committing_factory() as db:
        allocations = db.scalar(select(func.count()).select_from(Allocation).where(Allocation.epoch == number))
        allocated = db.scalar(select(func.sum(Allocation.tokens)).where(Allocation.epoch == number))
        earners = db.scalar(
            select(func.count(func.distinct(Session.contributor))).where(Session.epoch == number, Session.points > 0)
        )
        open_count = db.scalar(select(func.count()).select_from(Epoch).where(Epoch.status == EpochStatus.OPEN))
    assert allocations == earners
    assert allocated == settings.emission_per_epoch
    assert open_count == 1
