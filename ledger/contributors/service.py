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


def lock_keys(db: Session, namespace: str, keys: list[str]) -> None:
    """Take a transaction-scoped advisory lock per key, all in one statement, in a fixed order.

    Locks are taken in the order of their 64-bit key (the subquery's ORDER BY, which PostgreSQL
    follows when it evaluates the outer select list), so two transactions that share keys take
    them in the same order. Intake still retries a batch that PostgreSQL aborts as a deadlock.
    """
    if not keys:
        return
    db.execute(
        text(
            "SELECT pg_advisory_xact_lock(lock_key) FROM ("
            " SELECT DISTINCT hashtextextended(:namespace || key, 0) AS lock_key"
            " FROM unnest(CAST(:keys AS text[])) AS key ORDER BY 1) AS ordered"
        ),
        {"namespace": f"{namespace}:", "keys": sorted(set(keys))},
    )


def lock_contributors(db: Session, addresses: list[str]) -> None:
    """Lock each contributor for the rest of the transaction.

    Intake, consent changes and withdrawals of one contributor run one at a time, which keeps the
    rate limit, the daily cap and the consent check consistent.
    """
    lock_keys(db, "contributor", addresses)


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
