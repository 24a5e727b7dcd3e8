"""Contributor addresses and consent: pausing and resuming sharing as append-only events."""

import logging
import re
from datetime import datetime

from eth_utils import is_checksum_address, to_checksum_address
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from ledger.errors import InvalidInput
from ledger.models import ConsentEvent, Contributor

logger = logging.getLogger(__name__)

ADDRESS_PATTERN = re.compile(r"0x[0-9a-fA-F]{40}")


def normalize_address(value: str) -> str:
    """Return the EIP-55 checksummed form of an address given in any case.

    Raises:
        InvalidInput: when the value is not `0x` and 40 hex digits, or uses mixed case that is not
            a valid EIP-55 checksum (a likely typo).
    """
    if not isinstance(value, str) or not ADDRESS_PATTERN.fullmatch(value):
        raise InvalidInput(
            f"{value!r} is not an EVM address: expected 0x followed by 40 hex digits",
            code="invalid_address",
        )
    if not _is_single_case(value) and not is_checksum_address(value):
        raise InvalidInput(
            f"address {value!r} has an invalid EIP-55 checksum: "
            "send it in all lower case or with the correct checksum",
            code="invalid_address_checksum",
        )
    return to_checksum_address(value)


def _is_single_case(value: str) -> bool:
    digits = value[2:]
    return digits == digits.lower() or digits == digits.upper()


def ensure_contributor(db: Session, address: str) -> None:
    """Create the contributor row if it does not exist yet."""
    db.execute(insert(Contributor).values(address=address).on_conflict_do_nothing())


def ensure_contributors(db: Session, addresses: list[str]) -> None:
    """Create every missing contributor row in one statement."""
    if addresses:
        db.execute(
            text(
                "INSERT INTO contributors (address) SELECT unnest(CAST(:addresses AS varchar[]))"
                " ON CONFLICT (address) DO NOTHING"
            ),
            {"addresses": sorted(set(addresses))},
        )


def lock_contributors(db: Session, addresses: list[str]) -> None:
    """Lock the row of each contributor for the rest of the transaction, in address order.

    Intake, consent changes and withdrawals of one contributor run one at a time, which keeps the
    rate limit, the daily cap and the consent check consistent. The rows must exist (see
    `ensure_contributors`). Row locks live in the rows, so a batch of any size fits, where one
    advisory lock per contributor filled PostgreSQL's shared lock table under concurrent
    batches of a thousand. FOR NO KEY UPDATE leaves foreign key checks from other transactions
    unblocked.
    """
    if not addresses:
        return
    db.execute(_LOCK_CONTRIBUTORS_SQL, {"addresses": sorted(set(addresses))})


# unnest() returns the sorted array in order and each LATERAL probe locks one row, so every
# caller takes contributor locks in address order. Intake still retries a batch that PostgreSQL
# aborts as a deadlock victim.
_LOCK_CONTRIBUTORS_SQL = text(
    """
    SELECT locked.address FROM unnest(CAST(:addresses AS varchar[])) AS k(address)
    CROSS JOIN LATERAL (
        SELECT address FROM contributors c WHERE c.address = k.address LIMIT 1 FOR NO KEY UPDATE
    ) AS locked
    """
)


def set_sharing(db: Session, *, contributor: str, sharing: bool, at: datetime) -> ConsentEvent:
    """Record that `contributor` paused (`sharing=False`) or resumed sharing from `at` on."""
    ensure_contributor(db, contributor)
    lock_contributors(db, [contributor])
    event = ConsentEvent(contributor=contributor, sharing=sharing, effective_at=at)
    db.add(event)
    db.flush()
    logger.info(
        "consent.changed contributor=%s sharing=%s event_id=%s", contributor, sharing, event.id
    )
    return event


def sharing_at(db: Session, *, contributor: str, at: datetime) -> bool:
    """Return whether `contributor` was sharing at instant `at`.

    A contributor who never paused is sharing: the collector only sends sessions of people who
    opted in.
    """
    latest = db.scalar(
        select(ConsentEvent.sharing)
        .where(ConsentEvent.contributor == contributor, ConsentEvent.effective_at <= at)
        .order_by(ConsentEvent.effective_at.desc(), ConsentEvent.id.desc())
        .limit(1)
    )
    return True if latest is None else latest


def consent_history(db: Session, *, contributor: str) -> list[ConsentEvent]:
    """Return every consent event of `contributor`, oldest first."""
    return list(
        db.scalars(
            select(ConsentEvent)
            .where(ConsentEvent.contributor == contributor)
            .order_by(ConsentEvent.effective_at, ConsentEvent.id)
        )
    )
