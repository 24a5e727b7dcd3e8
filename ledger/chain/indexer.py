"""Claim indexer: reads `Claimed` events back into PostgreSQL, idempotently and reorg-aware.

Events are read from the block after the cursor up to head minus the confirmation depth, so a
block that may still be reorganized is not indexed. Rows are keyed by (transaction hash, log
index), which makes re-reading a range harmless.
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
            start = (cursor.block_number + 1) if cursor else chain.deployment.deploy_block
            if start > safe_head:
                return added
            start = _rewind_on_reorg(db, chain, start)
            end = min(safe_head, start + MAX_BLOCK_RANGE - 1)
            try:
                events = chain.distributor.events.Claimed().get_logs(from_block=start, to_block=end)
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
                result = db.execute(insert(ChainClaim).values(rows).on_conflict_do_nothing())
                added += result.rowcount or 0
            db.execute(
                insert(IndexerCursor)
                .values(name=CURSOR_NAME, block_number=end, updated_at=datetime.now(tz=UTC))
                .on_conflict_do_update(
                    index_elements=[IndexerCursor.name],
                    set_={"block_number": end, "updated_at": datetime.now(tz=UTC)},
                )
            )
            logger.info("indexer.claims.range from_block=%s to_block=%s events=%s", start, end, len(rows))


def _rewind_on_reorg(db: DbSession, chain: ChainContext, start: int) -> int:
    """Forget indexed claims whose block is no longer canonical; return where to read from."""
    latest = db.execute(
        select(ChainClaim.block_number, ChainClaim.block_hash).order_by(ChainClaim.block_number.desc()).limit(1)
    ).first()
    if latest is None:
        return start
    try:
        canonical = bytes(chain.w3.eth.get_block(latest.block_number)["hash"])
    except Exception as error:  # noqa: BLE001
        raise classify(error) from error
    if canonical != latest.block_hash:
        db.execute(delete(ChainClaim).where(ChainClaim.block_number >= latest.block_number))
        logger.warning("indexer.claims.reorg block=%s", latest.block_number)
        return min(start, latest.block_number)
    return start


def indexer_lag(db: DbSession, chain: ChainContext) -> int | None:
    """Return how many blocks the claim indexer is behind the head, or None before its first run."""
    cursor = db.scalar(select(IndexerCursor.block_number).where(IndexerCursor.name == CURSOR_NAME))
    return None if cursor is None else max(chain.head() - cursor, 0)
