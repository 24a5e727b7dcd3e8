"""Building a closed epoch: cumulative entitlements, both Merkle trees and every proof."""

import json
import logging
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session as DbSession

from ledger.merkle import StandardMerkleTree, claims_tree, contributions_tree, session_id_to_bytes32
from ledger.models import (
    Allocation,
    ChainClaim,
    Entitlement,
    EntitlementDebit,
    Epoch,
    EpochStatus,
    MerkleLeaf,
    MerkleTreeRecord,
    Session,
    SessionStatus,
)

logger = logging.getLogger(__name__)

CLAIMS = "claims"
CONTRIBUTIONS = "contributions"

#: Root anchored for a tree with no leaves.
EMPTY_ROOT = bytes(32)


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
    """Roll cumulative entitlements forward by one epoch.

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


def claimed_on_chain(db: DbSession) -> dict[str, int]:
    """Return the largest cumulative amount each account has claimed, as indexed from events."""
    rows = db.execute(
        select(ChainClaim.account, func.max(ChainClaim.cumulative_amount)).group_by(ChainClaim.account)
    ).all()
    return {account: int(amount) for account, amount in rows}


def build_epoch(db: DbSession, number: int) -> Epoch:
    """Turn closed epoch `number` into stored trees and proofs, ready to anchor.

    Idempotent: an epoch past `closed` is returned unchanged.

    Raises:
        ValueError: when the epoch is open, or the previous epoch is not built yet.
    """
    epoch = db.scalar(select(Epoch).where(Epoch.number == number).with_for_update())
    if epoch is None:
        raise ValueError(f"epoch {number} does not exist")
    if epoch.status == EpochStatus.OPEN:
        raise ValueError(f"epoch {number} is still open: close it first")
    if epoch.status != EpochStatus.CLOSED:
        return epoch

    previous = {
        row.contributor: (row.cumulative_amount, row.debt)
        for row in db.scalars(select(Entitlement).where(Entitlement.epoch == number - 1))
    }
    allocations = {
        row.contributor: row.tokens
        for row in db.scalars(select(Allocation).where(Allocation.epoch == number))
    }
    pending_debits = list(
        db.scalars(
            select(EntitlementDebit)
            .where(EntitlementDebit.applied_epoch.is_(None), EntitlementDebit.session_epoch < number + 1)
            .with_for_update()
        )
    )
    debits: dict[str, int] = {}
    for debit in pending_debits:
        debits[debit.contributor] = debits.get(debit.contributor, 0) + debit.tokens

    entitlements = compute_entitlements(previous, allocations, debits, claimed_on_chain(db))
    if entitlements:
        db.execute(
            insert(Entitlement),
            [
                {"epoch": number, "contributor": row.contributor, "cumulative_amount": row.cumulative_amount, "debt": row.debt}
                for row in entitlements
            ],
        )
    if pending_debits:
        db.execute(
            update(EntitlementDebit)
            .where(EntitlementDebit.session_id.in_([debit.session_id for debit in pending_debits]))
            .values(applied_epoch=number)
        )

    claim_entries = [(row.contributor, row.cumulative_amount) for row in entitlements if row.cumulative_amount > 0]
    claims_root = _store_tree(
        db,
        number,
        CLAIMS,
        claims_tree(claim_entries) if claim_entries else None,
        keys=[contributor for contributor, _ in claim_entries],
    )

    sessions = db.execute(
        select(Session.session_id, Session.content_hash, Session.contributor, Session.points)
        .where(Session.epoch == number, Session.status == SessionStatus.SCORED)
        .order_by(Session.session_id)
    ).all()
    contribution_entries = [
        (session_id_to_bytes32(row.session_id), row.content_hash, row.contributor, row.points)
        for row in sessions
    ]
    contributions_root = _store_tree(
        db,
        number,
        CONTRIBUTIONS,
        contributions_tree(contribution_entries) if contribution_entries else None,
        keys=[str(row.session_id) for row in sessions],
    )

    epoch.claims_root = claims_root
    epoch.contributions_root = contributions_root
    epoch.total_entitled = sum(amount for _, amount in claim_entries)
    epoch.status = EpochStatus.BUILT
    epoch.updated_at = func.now()
    db.flush()
    logger.info(
        "epoch.built epoch=%s claims_leaves=%s contribution_leaves=%s total_entitled=%s claims_root=0x%s",
        number,
        len(claim_entries),
        len(contribution_entries),
        epoch.total_entitled,
        claims_root.hex(),
    )
    return epoch


def _store_tree(
    db: DbSession, epoch: int, kind: str, tree: StandardMerkleTree | None, *, keys: list[str]
) -> bytes:
    if tree is None:
        return EMPTY_ROOT
    dump = tree.dump()
    db.add(
        MerkleTreeRecord(
            epoch=epoch, kind=kind, root=tree.root_bytes, leaf_count=len(tree), dump=json.dumps(dump)
        )
    )
    proofs = tree.proofs()
    nodes = dump["tree"]
    rows = [
        {
            "epoch": epoch,
            "kind": kind,
            "key": keys[index],
            "leaf_hash": bytes.fromhex(nodes[entry["treeIndex"]][2:]),
            "value": entry["value"],
            "proof": proofs[index],
        }
        for index, entry in enumerate(dump["values"])
    ]
    for start in range(0, len(rows), 5_000):
        db.execute(insert(MerkleLeaf), rows[start : start + 5_000])
    return tree.root_bytes


def epoch_tree_dump(db: DbSession, number: int, kind: str) -> dict | None:
    """Return the stored `standard-v1` dump of one of an epoch's trees, or None if it has none."""
    dump = db.scalar(
        select(MerkleTreeRecord.dump).where(MerkleTreeRecord.epoch == number, MerkleTreeRecord.kind == kind)
    )
    return None if dump is None else json.loads(dump)


