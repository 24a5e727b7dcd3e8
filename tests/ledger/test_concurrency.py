"""Concurrent intake and epoch close against PostgreSQL: never a double credit or allocation."""

import random
import threading
from collections import Counter
from datetime import timedelta

from sqlalchemy import func, select

from ledger.db import unit_of_work
from ledger.epochs.service import close_epoch, ensure_open_epoch
from ledger.intake.service import SessionConflict, submit_with_retry
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
