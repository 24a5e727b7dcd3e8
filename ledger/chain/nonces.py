"""One nonce allocator per signer, persisted in PostgreSQL.

The next nonce of a signer is the larger of the row in `signer_nonces` and the node's pending
transaction count. The row covers transactions that this service signed but that the node has
not seen yet, such as one signed before a crash or sent to another node behind a load balancer.
The node's count covers transactions sent with the same key from elsewhere. The row is locked with
SELECT ... FOR UPDATE, so concurrent signers for the same key wait for each other until commit.
"""

import logging

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session as DbSession

from ledger.chain.client import ChainContext
from ledger.chain.errors import classify
from ledger.models import SignerNonce

logger = logging.getLogger(__name__)


def allocate_nonce(db: DbSession, chain: ChainContext, address: str) -> int:
    """Reserve and return the next nonce of `address` on `chain`.

    The reservation is part of the caller's transaction: commit it together with the signed
    transaction that uses the nonce, so a rollback gives the nonce back. A transaction the node
    rejects keeps its nonce: the caller sends the same signed bytes again or replaces them, so
    no gap blocks the signer's later transactions.
    """
    row = _locked_row(db, chain.chain_id, address)
    try:
        pending = int(chain.w3.eth.get_transaction_count(address, "pending"))
    except Exception as error:  # noqa: BLE001 - mapped to the service's own error right here
        raise classify(error) from error
    nonce = max(pending, row.next_nonce)
    row.next_nonce = nonce + 1
    db.flush()
    logger.info("nonce.allocated signer=%s nonce=%s chain_pending=%s", address, nonce, pending)
    return nonce


def _locked_row(db: DbSession, chain_id: int, address: str) -> SignerNonce:
    db.execute(
        insert(SignerNonce).values(chain_id=chain_id, address=address, next_nonce=0).on_conflict_do_nothing()
    )
    row = db.scalar(
        select(SignerNonce)
        .where(SignerNonce.chain_id == chain_id, SignerNonce.address == address)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert row is not None
    return row
