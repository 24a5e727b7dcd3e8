"""Earnings, claimable amounts and proofs of contributors. All of it is public."""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from sqlalchemy.orm import Session as DbSession

from ledger.epochs.trees import (
    CLAIMS,
    CONTRIBUTIONS,
    NODES_PER_CHUNK,
    checked_leaf,
    claim_key,
    contribution_key,
    read_leaf,
)
from ledger.errors import NotFound
from ledger.merkle import ClaimProof, ContributionProof, core
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


# Everything the earnings document needs, in one statement and so from one snapshot. It reads
# whether the address is known, its points balance, what it claimed on chain and the latest
# active and built epochs. It also builds a JSON array with one row per epoch in which the
# address scored points, was allocated tokens or has an entitlement. Amounts go through JSON as strings so that no value
# above 2^53 passes through a float. Every lookup is an index lookup on (contributor, epoch).
_EARNINGS_SQL = """
    SELECT EXISTS (SELECT 1 FROM contributors WHERE address = %(address)s) AS known,
           (SELECT balance FROM point_balances WHERE account = %(address)s) AS balance,
           (SELECT max(cumulative_amount) FROM chain_claims WHERE account = %(address)s) AS claimed,
           (SELECT max(number) FROM epochs WHERE status = 'active') AS active,
           (SELECT max(number) FROM epochs
             WHERE status IN ('built', 'submitted', 'anchored', 'active')) AS latest_built,
           (SELECT json_agg(json_build_array(
                       e.number, e.status, p.points::text, a.points::text, a.tokens::text,
                       n.cumulative_amount::text)
                   ORDER BY e.number)
            FROM epochs e
            LEFT JOIN (
                SELECT epoch, sum(points) AS points FROM sessions
                WHERE contributor = %(address)s AND status = 'scored' AND epoch IS NOT NULL
                GROUP BY epoch
            ) p ON p.epoch = e.number
            LEFT JOIN allocations a ON a.epoch = e.number AND a.contributor = %(address)s
            LEFT JOIN entitlements n ON n.epoch = e.number AND n.contributor = %(address)s
            WHERE p.epoch IS NOT NULL OR a.epoch IS NOT NULL OR n.epoch IS NOT NULL) AS epochs
"""


def _integer(value: str | None) -> int | None:
    return None if value is None else int(value)


def earnings_of(db: DbSession, address: str) -> Earnings:
    """Return the earnings of `address` (checksummed) with one query.

    Raises:
        NotFound: when the address never submitted a session.
    """
    row = db.connection().exec_driver_sql(_EARNINGS_SQL, {"address": address}).mappings().one()
    return _earnings_from_row(address, row)


async def earnings_of_async(connection: AsyncConnection, address: str) -> Earnings:
    """Return the earnings of `address` (checksummed) with one query on an async connection.

    Raises:
        NotFound: when the address never submitted a session.
    """
    async with connection.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(_EARNINGS_SQL, {"address": address})
        row = await cursor.fetchone()
    return _earnings_from_row(address, row)


def _earnings_from_row(address: str, row: Mapping[str, Any]) -> Earnings:
    if not row["known"]:
        raise NotFound(f"contributor {address} not found: no session was ever submitted for it", code="contributor_not_found")

    epochs = []
    cumulative_by_epoch: dict[int, int] = {}
    for number, status, scored_points, allocated_points, tokens, cumulative_text in row["epochs"] or ():
        cumulative = _integer(cumulative_text)
        if cumulative is not None:
            cumulative_by_epoch[number] = cumulative
        allocated = allocated_points is not None
        epochs.append(
            EpochEarning(
                epoch=number,
                status=status,
                points=int(allocated_points if allocated else scored_points or 0),
                tokens=int(tokens) if allocated else 0,
                cumulative_amount=cumulative,
            )
        )

    active, latest_built = row["active"], row["latest_built"]
    cumulative = cumulative_by_epoch.get(active, 0) if active else 0
    newest = cumulative_by_epoch.get(latest_built, 0) if latest_built else 0
    claimed = int(row["claimed"] or 0)
    return Earnings(
        address=address,
        points_balance=int(row["balance"] or 0),
        epochs=epochs,
        cumulative_amount=cumulative,
        pending_amount=max(newest - cumulative, 0),
        claimed=claimed,
        claimable=max(cumulative - claimed, 0),
        active_epoch=active,
    )


# The latest active epoch, the account's leaf in its claims tree, the tree's root and size, the
# proof and what the account claimed on chain, in one statement. The proof is the sibling of
# the leaf's node and of each ancestor below the root, in the @openzeppelin/merkle-tree layout
# (node i has parent (i - 1) / 2; odd nodes are left children), read from the node chunks.
_ACTIVE_CLAIM_SQL = """
    WITH RECURSIVE active AS (
        SELECT max(number) AS number FROM epochs WHERE status = 'active'
    ), leaf AS (
        SELECT l.tree_index, l.value FROM merkle_leaves l, active
        WHERE l.epoch = active.number AND l.kind = %(kind)s AND l.key = %(key)s
    ), path(node, depth) AS (
        SELECT tree_index, 0 FROM leaf
        UNION ALL
        SELECT (node - 1) / 2, depth + 1 FROM path WHERE node > 0
    )
    SELECT active.number AS epoch, leaf.tree_index, leaf.value, t.root, t.leaf_count,
           (SELECT max(cumulative_amount) FROM chain_claims WHERE account = %(address)s) AS claimed,
           (SELECT array_agg(substring(c.nodes FROM (s.sibling %% %(per_chunk)s) * 32 + 1 FOR 32) ORDER BY s.depth)
            FROM (SELECT depth, CASE WHEN node %% 2 = 1 THEN node + 1 ELSE node - 1 END AS sibling
                  FROM path WHERE node > 0) s
            JOIN merkle_node_chunks c
              ON c.epoch = active.number AND c.kind = %(kind)s AND c.chunk = s.sibling / %(per_chunk)s) AS proof
    FROM active
    LEFT JOIN leaf ON true
    LEFT JOIN merkle_trees t ON t.epoch = active.number AND t.kind = %(kind)s
    """


def claim_proof_and_claimed(
    db: DbSession, address: str, *, distributor: str | None, chain_id: int | None
) -> tuple[ClaimProof, int]:
    """Return the proof of `address`'s cumulative amount in the latest active claims root, and
    the cumulative amount it has claimed on chain, with one query.

    Raises:
        NotFound: when no claims root is active yet or the address has no entitlement in it.
        MerkleInvariantError: when the stored nodes do not lead from the leaf to the root.
    """
    row = db.connection().exec_driver_sql(_ACTIVE_CLAIM_SQL, _claim_parameters(address)).mappings().one()
    return _claim_from_row(address, row, distributor=distributor, chain_id=chain_id)


async def claim_proof_and_claimed_async(
    connection: AsyncConnection, address: str, *, distributor: str | None, chain_id: int | None
) -> tuple[ClaimProof, int]:
    """Return what `claim_proof_and_claimed` returns, with one query on an async connection.

    Raises:
        NotFound: when no claims root is active yet or the address has no entitlement in it.
        MerkleInvariantError: when the stored nodes do not lead from the leaf to the root.
    """
    async with connection.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(_ACTIVE_CLAIM_SQL, _claim_parameters(address))
        row = await cursor.fetchone()
    return _claim_from_row(address, row, distributor=distributor, chain_id=chain_id)


def _claim_parameters(address: str) -> dict[str, Any]:
    return {"address": address, "kind": CLAIMS, "key": claim_key(address), "per_chunk": NODES_PER_CHUNK}


def _claim_from_row(
    address: str, row: Mapping[str, Any], *, distributor: str | None, chain_id: int | None
) -> tuple[ClaimProof, int]:
    if row["epoch"] is None:
        raise NotFound("no claims root is active yet: wait for the first epoch to be anchored", code="no_active_epoch")
    if row["tree_index"] is None:
        raise NotFound(f"{address} has no entitlement in the active epoch {row['epoch']}", code="no_entitlement")
    leaf = checked_leaf(
        row["epoch"],
        CLAIMS,
        claim_key(address),
        value=bytes(row["value"]),
        root=bytes(row["root"]),
        proof=[bytes(node) for node in row["proof"] or ()],
        expected_length=len(core.proof_indices(2 * row["leaf_count"] - 1, row["tree_index"])),
    )
    proof = ClaimProof(
        epoch=row["epoch"],
        root="0x" + leaf.root.hex(),
        account=leaf.value[0],
        cumulative_amount=int(leaf.value[1]),
        proof=tuple(leaf.proof),
        distributor=distributor,
        chain_id=chain_id,
    )
    return proof, int(row["claimed"] or 0)


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
