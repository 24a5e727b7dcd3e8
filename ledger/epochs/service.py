"""Epoch lifecycle in the database: the open epoch, closing it and allocating its emission."""

import logging
from datetime import datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from ledger.config import Settings
from ledger.epochs.trees import use_bulk_work_mem
from ledger.errors import NotFound
from ledger.models import EMISSION_ACCOUNT, Epoch, EpochStatus

logger = logging.getLogger(__name__)

#: Intake takes this advisory lock in shared mode while it posts points into the open epoch.
#: Closing an epoch takes it exclusively, so no posting can land in an epoch after its points
#: were summed.
EPOCH_LOCK_SQL = "hashtextextended('ledger:open-epoch', 0)"


def lock_open_epoch_shared(db: Session) -> None:
    """Hold the open-epoch lock in shared mode until the transaction ends."""
    db.execute(text(f"SELECT pg_advisory_xact_lock_shared({EPOCH_LOCK_SQL})"))


def lock_open_epoch_exclusive(db: Session) -> None:
    """Hold the open-epoch lock exclusively until the transaction ends."""
    db.execute(text(f"SELECT pg_advisory_xact_lock({EPOCH_LOCK_SQL})"))


def scheduled_emission(settings: Settings, epoch: int) -> int:
    """Return the emission schedule's amount for `epoch`: a constant amount per epoch."""
    del epoch
    return settings.emission_per_epoch


def ensure_open_epoch(db: Session, *, settings: Settings, now: datetime) -> Epoch:
    """Return the open epoch, opening epoch 1 when the ledger is new."""
    epoch = db.scalar(select(Epoch).where(Epoch.status == EpochStatus.OPEN))
    if epoch is not None:
        return epoch
    if db.scalar(select(Epoch.number).limit(1)) is not None:
        raise RuntimeError("no epoch is open although epochs exist: the ledger needs repair")
    db.execute(
        insert(Epoch)
        .values(
            number=1,
            status=EpochStatus.OPEN,
            opened_at=now,
            emission=scheduled_emission(settings, 1),
            rollover=0,
        )
        .on_conflict_do_nothing()
    )
    epoch = db.scalar(select(Epoch).where(Epoch.status == EpochStatus.OPEN))
    assert epoch is not None
    logger.info("epoch.opened epoch=%s", epoch.number)
    return epoch


def open_epoch_number(db: Session) -> int:
    """Return the number of the open epoch.

    Raises:
        NotFound: when no epoch is open (the service has not started its first epoch).
    """
    number = db.scalar(select(Epoch.number).where(Epoch.status == EpochStatus.OPEN))
    if number is None:
        raise NotFound("no epoch is open: start the service or run `ledger migrate` first")
    return number


def get_epoch(db: Session, number: int) -> Epoch:
    """Return epoch `number`.

    Raises:
        NotFound: when it does not exist.
    """
    epoch = db.get(Epoch, number)
    if epoch is None:
        raise NotFound(f"epoch {number} does not exist", code="epoch_not_found")
    return epoch


#: Net points per contributor posted into epoch :epoch, positive totals only.
_EPOCH_POINTS_SQL = """
    SELECT p.account AS contributor, sum(p.amount) AS points
    FROM journal_postings p JOIN journal_entries e ON e.id = p.entry_id
    WHERE e.epoch = :epoch AND p.account <> :emission_account
    GROUP BY p.account
    HAVING sum(p.amount) > 0
"""

#: A temporary table of the epoch's points. CREATE TABLE AS may scan and aggregate the journal
#: with parallel workers, which PostgreSQL never uses for an INSERT or a data-modifying WITH.
_COLLECT_POINTS_SQL = text(f"CREATE TEMPORARY TABLE closing_epoch_points ON COMMIT DROP AS {_EPOCH_POINTS_SQL}")

#: Allocates :emission among the contributors in closing_epoch_points by the rule of
#: ledger.epochs.allocation.allocate: floor(E * p / P) each, then one more unit to each of the
#: E - sum(floor) largest remainders, equal remainders going to the lower address first
#: (lower-case hex compared byte-wise orders addresses numerically).
_ALLOCATE_SQL = text(
    """
    WITH totals AS (
        SELECT CAST(:emission AS numeric) AS emission, sum(points) AS points FROM closing_epoch_points
    ), shares AS (
        SELECT contributor, p.points,
               div(t.emission * p.points, t.points) AS share,
               mod(t.emission * p.points, t.points) AS remainder
        FROM closing_epoch_points p, totals t
    ), ranked AS (
        SELECT contributor, points, share,
               row_number() OVER (ORDER BY remainder DESC, lower(contributor) COLLATE "C") AS rank,
               (SELECT emission FROM totals) - sum(share) OVER () AS leftover
        FROM shares
    ), inserted AS (
        INSERT INTO allocations (epoch, contributor, points, tokens)
        SELECT :epoch, contributor, points, share + CASE WHEN rank <= leftover THEN 1 ELSE 0 END
        FROM ranked
        ORDER BY contributor COLLATE "C"  -- key order of the primary key index under a C collation
        RETURNING points, tokens
    )
    SELECT count(*) AS contributors, coalesce(sum(points), 0) AS points, coalesce(sum(tokens), 0) AS tokens
    FROM inserted
    """
)


def epoch_points(db: Session, number: int) -> dict[str, int]:
    """Return each contributor's net points posted into epoch `number`, positive ones only."""
    rows = db.execute(text(_EPOCH_POINTS_SQL), {"epoch": number, "emission_account": EMISSION_ACCOUNT}).all()
    return {row.contributor: int(row.points) for row in rows}


def close_epoch(
    db: Session, *, settings: Settings, now: datetime, force: bool = False
) -> Epoch | None:
    """Close the open epoch when its time is up (or `force`), allocate it and open the next.

    The points are summed and allocated in SQL (see _ALLOCATE_SQL). Two workers
    calling this at once produce one allocation: the exclusive open-epoch lock serializes them
    and the second finds the next epoch still young.

    Returns:
        The closed epoch, or None when the open epoch is not due yet.
    """
    lock_open_epoch_exclusive(db)
    epoch = ensure_open_epoch(db, settings=settings, now=now)
    due_at = epoch.opened_at + timedelta(seconds=settings.epoch_duration_seconds)
    if not force and now < due_at:
        return None
    if epoch.emission < 0:
        raise ValueError(f"emission of epoch {epoch.number} must not be negative, got {epoch.emission}")

    use_bulk_work_mem(db)
    db.execute(text("DROP TABLE IF EXISTS pg_temp.closing_epoch_points"))
    db.execute(_COLLECT_POINTS_SQL, {"epoch": epoch.number, "emission_account": EMISSION_ACCOUNT})
    totals = db.execute(_ALLOCATE_SQL, {"epoch": epoch.number, "emission": epoch.emission}).one()
    contributors = int(totals.contributors)
    total_points = int(totals.points)
    allocated = int(totals.tokens)

    epoch.status = EpochStatus.CLOSED
    epoch.closed_at = now
    epoch.total_points = total_points
    epoch.allocated = allocated
    epoch.updated_at = now
    db.flush()

    carried = epoch.emission - allocated
    next_number = epoch.number + 1
    db.add(
        Epoch(
            number=next_number,
            status=EpochStatus.OPEN,
            opened_at=now,
            emission=scheduled_emission(settings, next_number) + carried,
            rollover=carried,
        )
    )
    db.flush()
    logger.info(
        "epoch.closed epoch=%s contributors=%s points=%s allocated=%s rollover=%s",
        epoch.number,
        contributors,
        total_points,
        allocated,
        carried,
    )
    return epoch
