"""Rebuilding an epoch whose roots the guardian revoked on chain.

The guardian revokes a pending epoch when its roots are wrong; the operator then corrects the
data (withdraws sessions, fixes scores) and the service rebuilds the epoch from the database and
anchors it again under the same number. Later epochs that were built on top of the revoked
entitlements are rebuilt too, because their cumulative amounts start from it. The allocation
made when the epoch closed is kept: withdrawals after the close reach the rebuilt tree as
entitlement debits, as they would for any closed epoch.
"""

import logging

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session as DbSession

from ledger.epochs.build import build_epoch
from ledger.models import (
    AnchorTransaction,
    AnchorTxStatus,
    Entitlement,
    EntitlementDebit,
    Epoch,
    EpochStatus,
    MerkleLeaf,
    MerkleTreeRecord,
)

logger = logging.getLogger(__name__)


def reset_revoked_epoch(db: DbSession, number: int) -> None:
    """Rebuild revoked epoch `number`, and every later built epoch, from the database.

    After this the epoch is `built` again with roots from the current data, and its old anchor
    transactions are kept with status `revoked`.
    """
    epoch = db.scalar(select(Epoch).where(Epoch.number == number).with_for_update())
    if epoch is None or epoch.status != EpochStatus.REVOKED:
        return
    later = list(
        db.scalars(
            select(Epoch).where(Epoch.number > number, Epoch.status == EpochStatus.BUILT).order_by(Epoch.number).with_for_update()
        )
    )
    old_root = epoch.claims_root
    for target in [epoch, *later]:
        _clear_build(db, target)

    db.execute(
        update(AnchorTransaction)
        .where(AnchorTransaction.epoch == number, AnchorTransaction.status != AnchorTxStatus.FAILED)
        .values(status=AnchorTxStatus.REVOKED)
    )
    for target in [epoch, *later]:
        build_epoch(db, target.number)
    logger.warning(
        "anchor.rebuilt epoch=%s old_claims_root=0x%s claims_root=0x%s later_epochs=%s",
        number,
        (old_root or b"").hex(),
        (epoch.claims_root or b"").hex(),
        len(later),
    )


def _clear_build(db: DbSession, epoch: Epoch) -> None:
    """Delete what `build_epoch` stored for `epoch` and put it back to `closed`."""
    number = epoch.number
    db.execute(delete(MerkleLeaf).where(MerkleLeaf.epoch == number))
    db.execute(delete(MerkleTreeRecord).where(MerkleTreeRecord.epoch == number))
    db.execute(delete(Entitlement).where(Entitlement.epoch == number))
    db.execute(update(EntitlementDebit).where(EntitlementDebit.applied_epoch == number).values(applied_epoch=None))
    epoch.claims_root = epoch.contributions_root = epoch.total_entitled = None
    epoch.anchor_tx_hash = epoch.anchor_block = epoch.activates_at = None
    epoch.status = EpochStatus.CLOSED
    db.flush()
