"""Double-entry points journal: balanced entries, idempotency keys and maintained balances."""

import logging
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from ledger.bulk import copy_rows, next_ids
from ledger.models import JournalEntry, JournalPosting, PointBalance

logger = logging.getLogger(__name__)


class UnbalancedEntry(ValueError):
    """The postings of an entry do not sum to zero."""


@dataclass(frozen=True)
class Posting:
    """One leg of an entry: `amount` points into `account`."""

    account: str
    amount: int


def post_entry(
    db: Session,
    *,
    idempotency_key: str,
    kind: str,
    epoch: int,
    postings: list[Posting],
    session_id: uuid.UUID | None = None,
    reverses_id: int | None = None,
) -> int | None:
    """Append one balanced entry and update the balances it touches, in the caller's transaction.

    Returns:
        The new entry id, or None when an entry with this idempotency key exists already, in
        which case nothing is written.

    Raises:
        UnbalancedEntry: when the postings do not sum to zero.
    """
    if sum(posting.amount for posting in postings) != 0:
        raise UnbalancedEntry(f"entry {idempotency_key!r} does not balance: {postings!r}")

    entry_id = db.scalar(
        insert(JournalEntry)
        .values(
            idempotency_key=idempotency_key,
            kind=kind,
            epoch=epoch,
            session_id=session_id,
            reverses_id=reverses_id,
        )
        .on_conflict_do_nothing(index_elements=[JournalEntry.idempotency_key])
        .returning(JournalEntry.id)
    )
    if entry_id is None:
        logger.info("journal.entry.duplicate idempotency_key=%s", idempotency_key)
        return None

    db.execute(
        insert(JournalPosting),
        [{"entry_id": entry_id, "account": p.account, "amount": p.amount} for p in postings],
    )
    _add_to_balances(db, postings)
    return entry_id


def post_entries(db: Session, entries: list[dict]) -> list[int]:
    """Append many new, balanced entries with COPY and update the balances they touch.

    Each item has the keyword arguments of `post_entry` (`idempotency_key`, `kind`, `epoch`,
    `postings`, optionally `session_id` and `reverses_id`). The caller guarantees the keys are
    new, as intake does by locking unseen session ids. A repeated key still fails the unique
    index, which aborts the transaction rather than crediting twice. Returns the new ids.

    Raises:
        UnbalancedEntry: when any entry's postings do not sum to zero; nothing is written.
    """
    if not entries:
        return []
    for entry in entries:
        if sum(posting.amount for posting in entry["postings"]) != 0:
            raise UnbalancedEntry(f"entry {entry['idempotency_key']!r} does not balance: {entry['postings']!r}")

    ids = next_ids(db, "journal_entries_id_seq", len(entries))
    copy_rows(
        db,
        "journal_entries",
        ("id", "idempotency_key", "kind", "epoch", "session_id", "reverses_id"),
        (
            (entry_id, entry["idempotency_key"], entry["kind"], entry["epoch"], entry.get("session_id"), entry.get("reverses_id"))
            for entry_id, entry in zip(ids, entries)
        ),
    )
    postings = [posting for entry in entries for posting in entry["postings"]]
    copy_rows(
        db,
        "journal_postings",
        ("entry_id", "account", "amount"),
        ((entry_id, posting.account, posting.amount) for entry_id, entry in zip(ids, entries) for posting in entry["postings"]),
    )
    _add_to_balances(db, postings)
    return ids


def _add_to_balances(db: Session, postings: list[Posting]) -> None:
    totals: dict[str, int] = {}
    for posting in postings:
        totals[posting.account] = totals.get(posting.account, 0) + posting.amount
    # Sorted so two transactions touching the same accounts lock rows in the same order.
    accounts = sorted(totals)
    db.execute(
        text(
            "INSERT INTO point_balances (account, balance)"
            " SELECT * FROM unnest(CAST(:accounts AS varchar[]), CAST(:amounts AS bigint[]))"
            " ON CONFLICT (account) DO UPDATE SET balance = point_balances.balance + EXCLUDED.balance"
        ),
        {"accounts": accounts, "amounts": [totals[account] for account in accounts]},
    )


def reverse_entry(db: Session, *, entry_id: int, idempotency_key: str) -> int | None:
    """Post the mirror image of entry `entry_id`, in the same epoch, pointing back at it."""
    original = db.get(JournalEntry, entry_id)
    if original is None:
        raise ValueError(f"journal entry {entry_id} does not exist")
    legs = db.execute(
        select(JournalPosting.account, JournalPosting.amount).where(JournalPosting.entry_id == entry_id)
    ).all()
    return post_entry(
        db,
        idempotency_key=idempotency_key,
        kind="reversal",
        epoch=original.epoch,
        session_id=original.session_id,
        reverses_id=entry_id,
        postings=[Posting(account, -amount) for account, amount in legs],
    )


def balance_of(db: Session, account: str) -> int:
    """Return the maintained balance of `account` (0 when it never received points)."""
    return db.scalar(select(PointBalance.balance).where(PointBalance.account == account)) or 0


@dataclass(frozen=True)
class JournalCheck:
    """Result of recomputing balances from the journal."""

    entries: int
    journal_total: int
    """Sum of every posting; 0 in a healthy journal."""
    unbalanced_entries: list[int]
    drift: dict[str, tuple[int, int]]
    """Account -> (maintained balance, balance recomputed from postings) where they differ."""

    @property
    def ok(self) -> bool:
        """True when the journal balances and every maintained balance matches it."""
        return self.journal_total == 0 and not self.unbalanced_entries and not self.drift


def check_journal(db: Session) -> JournalCheck:
    """Recompute every balance from the postings and compare with the maintained table."""
    entries = db.scalar(select(func.count()).select_from(JournalEntry)) or 0
    journal_total = db.scalar(select(func.coalesce(func.sum(JournalPosting.amount), 0))) or 0
    unbalanced = list(
        db.scalars(
            select(JournalPosting.entry_id)
            .group_by(JournalPosting.entry_id)
            .having(func.sum(JournalPosting.amount) != 0)
        )
    )
    rows = db.execute(
        text(
            """
            SELECT coalesce(b.account, j.account) AS account,
                   coalesce(b.balance, 0) AS maintained,
                   coalesce(j.total, 0) AS recomputed
            FROM point_balances b
            FULL OUTER JOIN (
                SELECT account, sum(amount) AS total FROM journal_postings GROUP BY account
            ) j ON j.account = b.account
            WHERE coalesce(b.balance, 0) <> coalesce(j.total, 0)
            """
        )
    ).all()
    drift = {row.account: (int(row.maintained), int(row.recomputed)) for row in rows}
    return JournalCheck(int(entries), int(journal_total), unbalanced, drift)
