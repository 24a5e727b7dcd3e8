"""Building a closed epoch: cumulative entitlements, both Merkle trees and every proof."""

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session as DbSession

from ledger.epochs.trees import (
    CLAIMS,
    CONTRIBUTIONS,
    EMPTY_ROOT,
    build_tree,
    fetch_columns,
    iter_dump_json,
    raw_connection,
    use_bulk_work_mem,
    write_tree,
)
from ledger.merkle.standard import cyclic_gc_paused
from ledger.models import Epoch, EpochStatus

logger = logging.getLogger(__name__)

__all__ = ["CLAIMS", "CONTRIBUTIONS", "EMPTY_ROOT", "build_epoch", "compute_entitlements", "epoch_tree_dump_json"]


@dataclass(frozen=True)
class EntitlementRow:
    """One contributor's published cumulative amount and the debt still to recover."""

    contributor: str
    cumulative_amount: int
    debt: int


def compute_entitlements(
    previous: dict[str, tuple[int, int]],
    allocations: dict[str, int],
    debits: dict[str, int],
    claimed: dict[str, int],
) -> list[EntitlementRow]:
    """Roll cumulative entitlements forward by one epoch: the rule build_epoch applies in SQL.

    Args:
        previous: contributor -> (cumulative amount, debt) published for the previous epoch.
        allocations: tokens allocated in this epoch.
        debits: tokens taken back for sessions withdrawn after their epoch closed.
        claimed: cumulative amount each account has claimed on chain.

    A published amount never falls below what the account already claimed; the shortfall is
    carried as debt and recovered from later allocations.
    """
    rows = []
    for contributor in sorted(set(previous) | set(allocations) | set(debits)):
        cumulative, debt = previous.get(contributor, (0, 0))
        target = cumulative + allocations.get(contributor, 0) - debits.get(contributor, 0) - debt
        floor = max(claimed.get(contributor, 0), 0)
        if target < floor:
            rows.append(EntitlementRow(contributor, floor, floor - target))
        else:
            rows.append(EntitlementRow(contributor, target, 0))
    return rows


#: Rolls cumulative entitlements forward by one epoch in one statement, with the same rule as
#: compute_entitlements: cumulative + allocation - debits - debt, but never below what the
#: account already claimed on chain, the shortfall carried as debt. Marks the debits it applies.
_ROLL_ENTITLEMENTS_SQL = text(
    """
    WITH applied AS (
        UPDATE entitlement_debits SET applied_epoch = :epoch
        WHERE applied_epoch IS NULL AND session_epoch <= :epoch
        RETURNING contributor, tokens
    ), debited AS (
        SELECT contributor, sum(tokens) AS tokens FROM applied GROUP BY contributor
    ), previous AS (
        SELECT contributor, cumulative_amount, debt FROM entitlements WHERE epoch = :epoch - 1
    ), allocated AS (
        SELECT contributor, tokens FROM allocations WHERE epoch = :epoch
    ), targets AS (
        SELECT contributor,
               coalesce(p.cumulative_amount, 0) + coalesce(a.tokens, 0)
                   - coalesce(d.tokens, 0) - coalesce(p.debt, 0) AS target
        FROM previous p
        FULL JOIN allocated a USING (contributor)
        FULL JOIN debited d USING (contributor)
    ), claimed AS (
        SELECT account AS contributor, max(cumulative_amount) AS amount
        FROM chain_claims GROUP BY account
    ), floored AS (
        SELECT t.contributor, t.target, greatest(coalesce(c.amount, 0), 0) AS floor
        FROM targets t LEFT JOIN claimed c USING (contributor)
    )
    INSERT INTO entitlements (epoch, contributor, cumulative_amount, debt)
    SELECT :epoch, contributor, greatest(target, floor), greatest(floor - target, 0)
    FROM floored
    ORDER BY contributor COLLATE "C"  -- key order of the primary key index under a C collation
    """
)

#: The claims tree leaves: accounts with a positive cumulative amount, keyed by address bytes.
_CLAIM_LEAVES_SQL = """
    SELECT decode(substr(contributor, 3), 'hex') AS key, cumulative_amount::text AS amount
    FROM entitlements
    WHERE epoch = %(epoch)s AND cumulative_amount > 0
    ORDER BY key
"""

#: The contributions tree leaves, ABI-encoded by PostgreSQL: bytes32 session id (the UUID
#: left-padded), bytes32 content hash, address contributor, uint256 points. A NULL or negative
#: `points` makes the whole value NULL, which build_epoch rejects.
_CONTRIBUTION_LEAVES_SQL = """
    SELECT uuid_send(session_id) AS key,
           '\\x00000000000000000000000000000000'::bytea || uuid_send(session_id) || content_hash
           || '\\x000000000000000000000000'::bytea || decode(substr(contributor, 3), 'hex')
           || '\\x000000000000000000000000000000000000000000000000'::bytea
           || CASE WHEN points >= 0 THEN int8send(points) END AS value
    FROM sessions
    WHERE epoch = %(epoch)s AND status = 'scored'
    ORDER BY session_id
"""

#: Size of a contributions leaf value: four 32-byte words.
_CONTRIBUTION_VALUE_SIZE = 128


def build_epoch(db: DbSession, number: int) -> Epoch:
    """Turn closed epoch `number` into stored trees and proofs, ready to anchor.

    Entitlements are rolled forward in SQL, both trees are hashed in Python from leaf values
    that PostgreSQL returns already ABI-encoded (claims amounts excepted), and nodes and leaves
    are written with COPY. Idempotent: an epoch past `closed` is returned unchanged.

    Raises:
        ValueError: when the epoch is open, or a scored session has no valid leaf value.
    """
    epoch = db.scalar(select(Epoch).where(Epoch.number == number).with_for_update())
    if epoch is None:
        raise ValueError(f"epoch {number} does not exist")
    if epoch.status == EpochStatus.OPEN:
        raise ValueError(f"epoch {number} is still open: close it first")
    if epoch.status != EpochStatus.CLOSED:
        return epoch

    use_bulk_work_mem(db)
    db.execute(_ROLL_ENTITLEMENTS_SQL, {"epoch": number})
    # One tree at a time, so the leaves and nodes of the first are freed before the second.
    with cyclic_gc_paused():
        claim_keys, claim_values, total_entitled = _claim_leaves(db, number)
        claims_root = _store_tree(db, number, CLAIMS, claim_keys, claim_values)
        claim_count = len(claim_keys)
        del claim_keys, claim_values
        contribution_keys, contribution_values = _contribution_leaves(db, number)
        contributions_root = _store_tree(db, number, CONTRIBUTIONS, contribution_keys, contribution_values)
        contribution_count = len(contribution_keys)
        del contribution_keys, contribution_values

    epoch.claims_root = claims_root
    epoch.contributions_root = contributions_root
    epoch.total_entitled = total_entitled
    epoch.status = EpochStatus.BUILT
    epoch.updated_at = func.now()
    db.flush()
    logger.info(
        "epoch.built epoch=%s claims_leaves=%s contribution_leaves=%s total_entitled=%s claims_root=0x%s",
        number,
        claim_count,
        contribution_count,
        total_entitled,
        claims_root.hex(),
    )
    return epoch


def _store_tree(db: DbSession, number: int, kind: str, keys: list[bytes], values: list[bytes]) -> bytes:
    tree = build_tree(number, kind, keys, values)
    write_tree(raw_connection(db), tree)
    return tree.root


def _claim_leaves(db: DbSession, number: int) -> tuple[list[bytes], list[bytes], int]:
    """Return the keys and encoded values of the claims tree, and the sum of its amounts."""
    columns = fetch_columns(db, _CLAIM_LEAVES_SQL, {"epoch": number})
    keys, amount_texts = columns if columns else ([], [])
    amounts = list(map(int, amount_texts))
    padding = bytes(12)
    values = [padding + key + amount.to_bytes(32, "big") for key, amount in zip(keys, amounts)]
    return keys, values, sum(amounts)


def _contribution_leaves(db: DbSession, number: int) -> tuple[list[bytes], list[bytes]]:
    """Return the keys and encoded values of the contributions tree.

    Raises:
        ValueError: when a scored session cannot be a leaf.
    """
    columns = fetch_columns(db, _CONTRIBUTION_LEAVES_SQL, {"epoch": number})
    keys, values = columns if columns else ([], [])
    if None in values or set(map(len, values)) - {_CONTRIBUTION_VALUE_SIZE}:
        raise ValueError(
            f"epoch {number} has a scored session with no points, negative points, or a content "
            "hash or contributor of the wrong size: it cannot be a contributions tree leaf"
        )
    return keys, values


def epoch_tree_dump_json(db: DbSession, number: int, kind: str) -> Iterator[str]:
    """Yield the stored `standard-v1` dump of one of an epoch's trees as JSON text pieces."""
    return iter_dump_json(db, number, kind)
