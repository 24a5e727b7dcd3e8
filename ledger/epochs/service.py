"""Epoch lifecycle in the database: the open epoch, closing it and allocating its emission."""

import logging
from datetime import datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from ledger.config import Settings
from ledger.epochs.allocation import allocate
from ledger.errors import NotFound
from ledger.models import EMISSION_ACCOUNT, Allocation, Epoch, EpochStatus

logger = logging.getLogger(__name__)

#: Intake holds this advisory lock shared while it posts points into the open epoch; closing an
#: epoch takes it exclusively, so no posting can land in an epoch after its points were summed.
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


def epoch_points(db: Session, number: int) -> dict[str, int]:
    """Return each contributor's net points posted into epoch `number`, positive ones only."""
    rows = db.execute(
        text(
            """
            SELECT p.account, sum(p.amount) AS points
            FROM journal_postings p JOIN journal_entries e ON e.id = p.entry_id
            WHERE e.epoch = :epoch AND p.account <> :emission
            GROUP BY p.account
            HAVING sum(p.amount) > 0
            """
        ),
        {"epoch": number, "emission": EMISSION_ACCOUNT},
    ).all()
    return {row.account: int(row.points) for row in rows}


def close_epoch(
    db: Session, *, settings: Settings, now: datetime, force: bool = False
) -> Epoch | None:
    """Close the open epoch when its time is up (or `force`), allocate it and open the next.

    Two workers calling this at once produce one allocation: the exclusive open-epoch lock
    serializes them and the second finds the next epoch still young.

    Returns:
        The closed epoch, or None when the open epoch is not due yet.
    """
    lock_open_epoch_exclusive(db)
    epoch = ensure_open_epoch(db, settings=settings, now=now)
    due_at = epoch.opened_at + timedelta(seconds=settings.epoch_duration_seconds)
    if not force and now < due_at:
        return None

    points = epoch_points(db, epoch.number)
    shares = allocate(epoch.emission, points)
    total_points = sum(points.values())
    allocated = sum(shares.values())

    if shares:
        db.execute(
            insert(Allocation),
            [
                {"epoch": epoch.number, "contributor": address, "points": points[address], "tokens": tokens}
                for address, tokens in sorted(shares.items())
            ],
        )

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
        len(shares),
        total_points,
        allocated,
        carried,
    )
    return epoch
