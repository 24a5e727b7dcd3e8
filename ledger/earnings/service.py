"""What a contributor earned and can claim, and the proofs behind it. All of it is public."""

import uuid
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session as DbSession

from ledger.epochs.trees import CLAIMS, CONTRIBUTIONS, claim_key, contribution_key, read_leaf
from ledger.errors import NotFound
from ledger.journal.service import balance_of
from ledger.merkle import ClaimProof, ContributionProof
from ledger.models import (
    Allocation,
    ChainClaim,
    Contributor,
    Entitlement,
    Epoch,
    EpochStatus,
    Session,
)

#: Epoch states in which a claims root is on chain.
ON_CHAIN = (EpochStatus.ANCHORED, EpochStatus.ACTIVE)


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


def latest_epoch_in(db: DbSession, statuses: tuple[EpochStatus, ...]) -> int | None:
    """Return the highest epoch number in one of `statuses`."""
    return db.scalar(select(func.max(Epoch.number)).where(Epoch.status.in_(statuses)))


def claimed_amount(db: DbSession, address: str) -> int:
    """Return the largest cumulative amount `address` has claimed on chain."""
    return int(
        db.scalar(select(func.coalesce(func.max(ChainClaim.cumulative_amount), 0)).where(ChainClaim.account == address))
        or 0
    )


def _entitlement(db: DbSession, address: str, epoch: int | None) -> int:
    if epoch is None:
        return 0
    amount = db.scalar(
        select(Entitlement.cumulative_amount).where(Entitlement.epoch == epoch, Entitlement.contributor == address)
    )
    return int(amount or 0)


def earnings_of(db: DbSession, address: str) -> Earnings:
    """Return the earnings of `address` (checksummed).

    Raises:
        NotFound: when the address never submitted a session.
    """
    if db.get(Contributor, address) is None:
        raise NotFound(f"contributor {address} not found: no session was ever submitted for it", code="contributor_not_found")

    points_by_epoch = dict(
        db.execute(
            select(Session.epoch, func.sum(Session.points))
            .where(Session.contributor == address, Session.epoch.is_not(None), Session.status == "scored")
            .group_by(Session.epoch)
        ).all()
    )
    allocations = {row.epoch: row for row in db.scalars(select(Allocation).where(Allocation.contributor == address))}
    entitlements = {
        row.epoch: row.cumulative_amount for row in db.scalars(select(Entitlement).where(Entitlement.contributor == address))
    }
    statuses = dict(db.execute(select(Epoch.number, Epoch.status)).all())

    epochs = []
    for number in sorted(set(points_by_epoch) | set(allocations) | set(entitlements)):
        allocation = allocations.get(number)
        epochs.append(
            EpochEarning(
                epoch=number,
                status=statuses[number].value,
                points=allocation.points if allocation else int(points_by_epoch.get(number) or 0),
                tokens=allocation.tokens if allocation else 0,
                cumulative_amount=entitlements.get(number),
            )
        )

    active = latest_epoch_in(db, (EpochStatus.ACTIVE,))
    latest_built = latest_epoch_in(db, (EpochStatus.BUILT, EpochStatus.SUBMITTED, EpochStatus.ANCHORED, EpochStatus.ACTIVE))
    cumulative = _entitlement(db, address, active)
    newest = _entitlement(db, address, latest_built)
    claimed = claimed_amount(db, address)
    return Earnings(
        address=address,
        points_balance=balance_of(db, address),
        epochs=epochs,
        cumulative_amount=cumulative,
        pending_amount=max(newest - cumulative, 0),
        claimed=claimed,
        claimable=max(cumulative - claimed, 0),
        active_epoch=active,
    )


def claim_proof(db: DbSession, address: str, *, distributor: str | None, chain_id: int | None) -> ClaimProof:
    """Return the proof of `address`'s cumulative amount in the latest active claims root.

    Raises:
        NotFound: when no claims root is active yet or the address has no entitlement in it.
    """
    active = latest_epoch_in(db, (EpochStatus.ACTIVE,))
    if active is None:
        raise NotFound("no claims root is active yet: wait for the first epoch to be anchored", code="no_active_epoch")
    leaf = read_leaf(db, active, CLAIMS, claim_key(address))
    if leaf is None:
        raise NotFound(f"{address} has no entitlement in the active epoch {active}", code="no_entitlement")
    return ClaimProof(
        epoch=active,
        root="0x" + leaf.root.hex(),
        account=leaf.value[0],
        cumulative_amount=int(leaf.value[1]),
        proof=tuple(leaf.proof),
        distributor=distributor,
        chain_id=chain_id,
    )


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
