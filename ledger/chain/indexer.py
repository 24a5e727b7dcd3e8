"""Claim indexer: reads `Claimed` events back into PostgreSQL, idempotently and reorg-aware.

Events are read from the block after the cursor up to head minus the confirmation depth, so a
block that may still be reorganized is not indexed. Rows are keyed by (transaction hash, log
index), which makes re-reading a range harmless. The cursor stores the hash of its block. When
the canonical chain has another block at that height, a reorg went deeper than the confirmation
depth: the claims from blocks that left the chain are deleted and their range is read again.
"""

import logging
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker

from ledger.chain.client import ChainContext
from ledger.chain.errors import classify
from ledger.db import unit_of_work
from ledger.models import ChainClaim, IndexerCursor

logger = logging.getLogger(__name__)

CURSOR_NAME = "claims"
#: Blocks read per `eth_getLogs` call; public endpoints often cap ranges near this size.
MAX_BLOCK_RANGE = 2_000


def index_claims(factory: sessionmaker[DbSession], chain: ChainContext, *, confirmations: int) -> int:
    """Index `Claimed` events in blocks with at least `confirmations`; return the rows added.

    A transaction in block b has head - b + 1 confirmations, so with 1 the head block counts.
    """
    added = 0
    safe_head = chain.head() - max(confirmations - 1, 0)
    while True:
        with unit_of_work(factory) as db:
            cursor = db.get(IndexerCursor, CURSOR_NAME, with_for_update=True)
            if cursor is not None and not _cursor_canonical(chain, cursor):
                _rewind(db, chain, cursor)
            start = (cursor.block_number + 1) if cursor else chain.deployment.deploy_block
            if start > safe_head:
                return added
            end = min(safe_head, start + MAX_BLOCK_RANGE - 1)
            try:
                events = chain.distributor.events.Claimed().get_logs(from_block=start, to_block=end)
                end_hash = bytes(chain.w3.eth.get_block(end)["hash"])
            except Exception as error:  # noqa: BLE001
                raise classify(error) from error
            rows = [
                {
                    "tx_hash": bytes(event["transactionHash"]),
                    "log_index": int(event["logIndex"]),
                    "block_number": int(event["blockNumber"]),
                    "block_hash": bytes(event["blockHash"]),
                    "account": event["args"]["account"],
                    "amount": int(event["args"]["amount"]),
                    "cumulative_amount": int(event["args"]["cumulativeAmount"]),
                    "epoch": int(event["args"]["epoch"]),
                }
                for event in events
            ]
            if rows:
                inserted = db.scalars(
                    insert(ChainClaim).values(rows).on_conflict_do_nothing().returning(ChainClaim.log_index)
                ).all()
                added += len(inserted)
            now = datetime.now(tz=UTC)
            db.execute(
                insert(IndexerCursor)
                .values(name=CURSOR_NAME, block_number=end, block_hash=end_hash, updated_at=now)
                .on_conflict_do_update(
                    index_elements=[IndexerCursor.name],
                    set_={"block_number": end, "block_hash": end_hash, "updated_at": now},
                )
            )
            logger.info("indexer.claims.range from_block=%s to_block=%s events=%s", start, end, len(rows))


def _canonical_hash(chain: ChainContext, number: int) -> bytes | None:
    """Return the hash of canonical block `number`, or None when the chain is shorter now."""
    try:
        return bytes(chain.w3.eth.get_block(number)["hash"])
    except Exception as error:  # noqa: BLE001
        if type(error).__name__ == "BlockNotFound":
            return None
        raise classify(error) from error


def _cursor_canonical(chain: ChainContext, cursor: IndexerCursor) -> bool:
    # A cursor written before its hash was stored cannot be checked; the next range stores one.
    return cursor.block_hash is None or _canonical_hash(chain, cursor.block_number) == cursor.block_hash


def _rewind(db: DbSession, chain: ChainContext, cursor: IndexerCursor) -> None:
    """Forget indexed claims that are no longer canonical and move the cursor back before them.

    The cursor goes back to the newest block of an indexed claim that is still canonical (or to
    just before the deployment), so every block after it is read again.
    """
    old_block = cursor.block_number
    blocks = db.execute(
        select(ChainClaim.block_number, ChainClaim.block_hash)
        .distinct()
        .where(ChainClaim.block_number <= old_block)
        .order_by(ChainClaim.block_number.desc())
    ).all()
    keep_through = chain.deployment.deploy_block - 1
    keep_hash = None
    for number, block_hash in blocks:
        if _canonical_hash(chain, number) == block_hash:
            keep_through, keep_hash = number, block_hash
            break
    removed = db.execute(delete(ChainClaim).where(ChainClaim.block_number > keep_through)).rowcount
    cursor.block_number = keep_through
    cursor.block_hash = keep_hash
    db.flush()
    logger.warning(
        "indexer.claims.reorg cursor_block=%s rewound_to=%s claims_removed=%s", old_block, keep_through, removed
    )


def indexer_lag(db: DbSession, chain: ChainContext) -> int | None:
    """Return how many blocks the claim indexer is behind the head, or None before its first run."""
    cursor = db.scalar(select(IndexerCursor.block_number).where(IndexerCursor.name == CURSOR_NAME))
    return None if cursor is None else max(chain.head() - cursor, 0)
