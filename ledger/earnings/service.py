"""Earnings, claimable amounts and proofs of contributors. All of it is public."""

import uuid
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.orm import Session as DbSession

from ledger.epochs.trees import CLAIMS, CONTRIBUTIONS, claim_key, contribution_key, read_leaf, stored_leaf
from ledger.errors import NotFound
from ledger.merkle import ClaimProof, ContributionProof
from ledger.models import Session


@dataclass(frozen=True)
class EpochEarning:
    """One epoch of a contributor's earnings."""

    epoch: int
    status: str
    points: int
    tokens: int
    cumulative_amount: int | None


@dataclass(frozen=True)
class Earnings:
    """A contributor's points and tokens, and how much is claimable now. Tokens in base units."""

    address: str
    points_balance: int
    epochs: list[EpochEarning] = field(default_factory=list)
    cumulative_amount: int = 0
    """Entitlement in the latest active claims root."""
    pending_amount: int = 0
    """Entitlement anchored or built but not yet active, beyond `cumulative_amount`."""
    claimed: int = 0
    """Cumulative amount claimed on chain, as indexed from `Claimed` events."""
    claimable: int = 0
    """`cumulative_amount - claimed`, never negative."""
    active_epoch: int | None = None


_SUMMARY_SQL = text(
    """
    SELECT EXISTS (SELECT 1 FROM contributors WHERE address = :address) AS known,
           (SELECT balance FROM point_balances WHERE account = :address) AS balance,
           (SELECT max(cumulative_amount) FROM chain_claims WHERE account = :address) AS claimed,
           (SELECT max(number) FROM epochs WHERE status = 'active') AS active,
           (SELECT max(number) FROM epochs
             WHERE status IN ('built', 'submitted', 'anchored', 'active')) AS latest_built
    """
)

# One row per epoch in which the contributor scored points, was allocated tokens or has an
# entitlement. Every join is an index lookup on (contributor, epoch).
_EPOCHS_SQL = text(
    """
    SELECT e.number, e.status, p.points AS scored_points, a.points AS allocated_points, a.tokens,
           n.cumulative_amount
    FROM epochs e
    LEFT JOIN (
        SELECT epoch, sum(points) AS points FROM sessions
        WHERE contributor = :address AND status = 'scored' AND epoch IS NOT NULL
        GROUP BY epoch
    ) p ON p.epoch = e.number
    LEFT JOIN allocations a ON a.epoch = e.number AND a.contributor = :address
    LEFT JOIN entitlements n ON n.epoch = e.number AND n.contributor = :address
    WHERE p.epoch IS NOT NULL OR a.epoch IS NOT NULL OR n.epoch IS NOT NULL
    ORDER BY e.number
    """
)


def earnings_of(db: DbSession, address: str) -> Earnings:
    """Return the earnings of `address` (checksummed) with two queries.

    Raises:
        NotFound: when the address never submitted a session.
    """
    summary = db.execute(_SUMMARY_SQL, {"address": address}).one()
    if not summary.known:
        raise NotFound(f"contributor {address} not found: no session was ever submitted for it", code="contributor_not_found")

    epochs = []
    cumulative_by_epoch: dict[int, int] = {}
    for row in db.execute(_EPOCHS_SQL, {"address": address}):
        cumulative = None if row.cumulative_amount is None else int(row.cumulative_amount)
        if cumulative is not None:
            cumulative_by_epoch[row.number] = cumulative
        allocated = row.allocated_points is not None
        epochs.append(
            EpochEarning(
                epoch=row.number,
                status=row.status,
                points=int(row.allocated_points if allocated else row.scored_points or 0),
                tokens=int(row.tokens) if allocated else 0,
                cumulative_amount=cumulative,
            )
        )

    cumulative = cumulative_by_epoch.get(summary.active, 0) if summary.active else 0
    newest = cumulative_by_epoch.get(summary.latest_built, 0) if summary.latest_built else 0
    claimed = int(summary.claimed or 0)
    return Earnings(
        address=address,
        points_balance=int(summary.balance or 0),
        epochs=epochs,
        cumulative_amount=cumulative,
        pending_amount=max(newest - cumulative, 0),
        claimed=claimed,
        claimable=max(cumulative - claimed, 0),
        active_epoch=summary.active,
    )


# The latest active epoch, the account's leaf in its claims tree, the tree's root and size, and
# what the account claimed on chain, in one round trip.
_ACTIVE_CLAIM_SQL = text(
    """
    SELECT a.number AS epoch, l.tree_index, l.value, t.root, t.leaf_count,
           (SELECT max(cumulative_amount) FROM chain_claims WHERE account = :address) AS claimed
    FROM (SELECT max(number) AS number FROM epochs WHERE status = 'active') AS a
    LEFT JOIN merkle_leaves l ON l.epoch = a.number AND l.kind = :kind AND l.key = :key
    LEFT JOIN merkle_trees t ON t.epoch = a.number AND t.kind = :kind
    """
)


def claim_proof_and_claimed(
    db: DbSession, address: str, *, distributor: str | None, chain_id: int | None
) -> tuple[ClaimProof, int]:
    """Return the proof of `address`'s cumulative amount in the latest active claims root, and
    the cumulative amount it has claimed on chain, in two queries.

    Raises:
        NotFound: when no claims root is active yet or the address has no entitlement in it.
    """
    key = claim_key(address)
    row = db.execute(_ACTIVE_CLAIM_SQL, {"address": address, "kind": CLAIMS, "key": key}).one()
    if row.epoch is None:
        raise NotFound("no claims root is active yet: wait for the first epoch to be anchored", code="no_active_epoch")
    if row.tree_index is None:
        raise NotFound(f"{address} has no entitlement in the active epoch {row.epoch}", code="no_entitlement")
    leaf = stored_leaf(
        db,
        row.epoch,
        CLAIMS,
        key,
        tree_index=row.tree_index,
        value=bytes(row.value),
        root=bytes(row.root),
        leaf_count=row.leaf_count,
    )
    proof = ClaimProof(
        epoch=row.epoch,
        root="0x" + leaf.root.hex(),
        account=leaf.value[0],
        cumulative_amount=int(leaf.value[1]),
        proof=tuple(leaf.proof),
        distributor=distributor,
        chain_id=chain_id,
    )
    return proof, int(row.claimed or 0)


def claim_proof(db: DbSession, address: str, *, distributor: str | None, chain_id: int | None) -> ClaimProof:
    """Return the proof of `address`'s cumulative amount in the latest active claims root.

    Raises:
        NotFound: when no claims root is active yet or the address has no entitlement in it.
    """
    return claim_proof_and_claimed(db, address, distributor=distributor, chain_id=chain_id)[0]


def contribution_proof(
    db: DbSession, session_id: uuid.UUID, *, distributor: str | None, chain_id: int | None
) -> ContributionProof:
    """Return the proof that session `session_id` is in its epoch's contributions tree.

    Raises:
        NotFound: when the session is unknown or its epoch's tree is not built yet.
    """
    session = db.get(Session, session_id)
    if session is None:
        raise NotFound(f"session {session_id} not found", code="session_not_found")
    if session.epoch is None:
        raise NotFound(f"session {session_id} was not scored, so it has no contribution proof", code="proof_not_found")
    leaf = read_leaf(db, session.epoch, CONTRIBUTIONS, contribution_key(session_id))
    if leaf is None:
        raise NotFound(
            f"no contribution proof for session {session_id} yet: epoch {session.epoch} is not built",
            code="proof_not_found",
        )
    return ContributionProof(
        epoch=leaf.epoch,
        root="0x" + leaf.root.hex(),
        session_id=leaf.value[0],
        content_hash=leaf.value[1],
        contributor=leaf.value[2],
        points=int(leaf.value[3]),
        proof=tuple(leaf.proof),
        distributor=distributor,
        chain_id=chain_id,
    )
