"""Anchoring built epochs on chain as a persisted state machine.

    built --sign, store, send--> submitted --N confirmations--> anchored --challenge period--> active
      ^                              |                              |
      +------ reverted / dropped ----+<------- reorg drops tx ------+

Every signed transaction is stored before it is sent, so after a crash at any step the next run
finds it. Before signing, the contract is read: an epoch the contract already holds with the
same roots is adopted instead of anchored a second time.
"""

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker
from web3.contract import Contract

from ledger.chain.client import ChainContext
from ledger.chain.errors import ChainError, NonceTooLow, TransactionReverted, classify
from ledger.db import unit_of_work
from ledger.models import AnchorTransaction, AnchorTxStatus, Epoch, EpochStatus

logger = logging.getLogger(__name__)

#: Seconds a transaction may stay unmined before it is replaced with higher fees.
REPLACE_AFTER_SECONDS = 60
#: Minimum fee increase a node accepts for a same-nonce replacement: 12.5 %, rounded up.
FEE_BUMP_NUMERATOR, FEE_BUMP_DENOMINATOR = 1125, 1000
GAS_LIMIT_MARGIN_PERCENT = 20


class AnchorMismatch(ChainError):
    """The contract holds this epoch with other roots than the database: needs an operator."""


@dataclass(frozen=True)
class OnChainEpoch:
    """An epoch as the distributor stores it."""

    claims_root: bytes
    contributions_root: bytes
    total_entitled: int
    activates_at: int
    revoked: bool


def read_chain_epoch(chain: ChainContext, number: int) -> OnChainEpoch:
    """Return the distributor's record of epoch `number` (zeros when it has none)."""
    return read_distributor_epoch(chain.distributor, number)


def read_distributor_epoch(distributor: Contract, number: int) -> OnChainEpoch:
    """Return `distributor`'s record of epoch `number` (zeros when it has none)."""
    try:
        record = distributor.functions.epochs(number).call()
    except Exception as error:  # noqa: BLE001
        raise classify(error) from error
    claims_root, contributions_root, total_entitled, activates_at, revoked = record
    return OnChainEpoch(bytes(claims_root), bytes(contributions_root), int(total_entitled), int(activates_at), bool(revoked))


def chain_last_epoch(chain: ChainContext) -> int:
    """Return the latest epoch the distributor holds."""
    try:
        return int(chain.distributor.functions.lastEpoch().call())
    except Exception as error:  # noqa: BLE001
        raise classify(error) from error


def drive_anchoring(
    factory: sessionmaker[DbSession], chain: ChainContext, anchorer: LocalAccount, *, confirmations: int
) -> None:
    """Advance every epoch between `built` and `active` by as many steps as the chain allows.

    Epochs are handled in order and the loop stops at the first one that must wait, because the
    contract only takes consecutive epochs.
    """
    with factory() as db:
        numbers = list(
            db.scalars(
                select(Epoch.number)
                .where(Epoch.status.in_([EpochStatus.BUILT, EpochStatus.SUBMITTED, EpochStatus.ANCHORED]))
                .order_by(Epoch.number)
            )
        )
    for number in numbers:
        status = _step(factory, chain, anchorer, number, confirmations=confirmations)
        if status != EpochStatus.ACTIVE:
            break


def _step(
    factory: sessionmaker[DbSession],
    chain: ChainContext,
    anchorer: LocalAccount,
    number: int,
    *,
    confirmations: int,
) -> EpochStatus:
    with unit_of_work(factory) as db:
        epoch = db.scalar(select(Epoch).where(Epoch.number == number).with_for_update())
        assert epoch is not None
        if epoch.status == EpochStatus.BUILT:
            _adopt_or_submit(db, chain, anchorer, epoch)
        if epoch.status == EpochStatus.SUBMITTED:
            _check_submitted(db, chain, anchorer, epoch, confirmations=confirmations)
        if epoch.status == EpochStatus.ANCHORED:
            _check_anchored(db, chain, epoch)
        return epoch.status


def _adopt_or_submit(db: DbSession, chain: ChainContext, anchorer: LocalAccount, epoch: Epoch) -> None:
    on_chain_last = chain_last_epoch(chain)
    if on_chain_last >= epoch.number:
        record = read_chain_epoch(chain, epoch.number)
        if record.claims_root == epoch.claims_root and record.contributions_root == epoch.contributions_root:
            # A transaction sent before a crash made it; adopt it instead of anchoring again.
            epoch.status = EpochStatus.SUBMITTED
            logger.info("anchor.adopted epoch=%s", epoch.number)
            return
        raise AnchorMismatch(
            f"epoch {epoch.number} is on chain with claims root 0x{record.claims_root.hex()}, "
            f"the database has 0x{(epoch.claims_root or b'').hex()}: revoke it on chain or repair the database"
        )
    if on_chain_last < epoch.number - 1:
        logger.info("anchor.waiting epoch=%s chain_last_epoch=%s", epoch.number, on_chain_last)
        return
    if on_chain_last >= 1:
        previous = read_chain_epoch(chain, on_chain_last)
        if previous.activates_at > chain.block_timestamp():
            logger.info("anchor.waiting_previous_active epoch=%s previous=%s", epoch.number, on_chain_last)
            return

    pending = db.scalar(
        select(AnchorTransaction).where(
            AnchorTransaction.epoch == epoch.number,
            AnchorTransaction.status.in_([AnchorTxStatus.SIGNED, AnchorTxStatus.SENT]),
        )
    )
    if pending is None:
        pending = _sign_anchor(db, chain, anchorer, epoch)
    _broadcast(chain, pending)
    epoch.status = EpochStatus.SUBMITTED


def _sign_anchor(db: DbSession, chain: ChainContext, anchorer: LocalAccount, epoch: Epoch) -> AnchorTransaction:
    w3 = chain.w3
    try:
        nonce = w3.eth.get_transaction_count(anchorer.address, "pending")
        base_fee = int(w3.eth.get_block("latest")["baseFeePerGas"])
        priority_fee = int(w3.eth.max_priority_fee)
        call = chain.distributor.functions.anchor(
            epoch.number, epoch.claims_root, epoch.contributions_root, epoch.total_entitled
        )
        gas = call.estimate_gas({"from": anchorer.address})
    except Exception as error:  # noqa: BLE001
        raise classify(error) from error

    max_fee = 2 * base_fee + priority_fee
    transaction = call.build_transaction(
        {
            "from": anchorer.address,
            "nonce": nonce,
            "chainId": chain.chain_id,
            "gas": gas * (100 + GAS_LIMIT_MARGIN_PERCENT) // 100,
            "maxFeePerGas": max_fee,
            "maxPriorityFeePerGas": priority_fee,
        }
    )
    signed = anchorer.sign_transaction(transaction)
    record = AnchorTransaction(
        tx_hash=bytes(signed.hash),
        epoch=epoch.number,
        sender=anchorer.address,
        nonce=nonce,
        raw_tx=bytes(signed.raw_transaction),
        max_fee_per_gas=max_fee,
        max_priority_fee_per_gas=priority_fee,
        status=AnchorTxStatus.SIGNED,
    )
    db.add(record)
    # Committed before sending: a crash after the send still leaves the hash to look for.
    db.commit()
    logger.info("anchor.tx.signed epoch=%s tx_hash=0x%s nonce=%s", epoch.number, record.tx_hash.hex(), nonce)
    return record


def _broadcast(chain: ChainContext, record: AnchorTransaction) -> None:
    try:
        chain.w3.eth.send_raw_transaction(record.raw_tx)
    except Exception as error:  # noqa: BLE001
        mapped = classify(error)
        if isinstance(mapped, NonceTooLow) or "already known" in str(error).lower():
            # The node has this transaction or one with its nonce; receipts will tell which.
            logger.info("anchor.tx.known epoch=%s tx_hash=0x%s", record.epoch, record.tx_hash.hex())
        else:
            logger.warning(
                "anchor.tx.send_failed epoch=%s tx_hash=0x%s error=%s", record.epoch, record.tx_hash.hex(), mapped
            )
            raise mapped from error
    record.status = AnchorTxStatus.SENT
    logger.info("anchor.tx.sent epoch=%s tx_hash=0x%s", record.epoch, record.tx_hash.hex())


def _check_submitted(
    db: DbSession, chain: ChainContext, anchorer: LocalAccount, epoch: Epoch, *, confirmations: int
) -> None:
    records = list(db.scalars(select(AnchorTransaction).where(AnchorTransaction.epoch == epoch.number)))
    head = chain.head()
    for record in records:
        receipt = _receipt(chain, record.tx_hash)
        if receipt is None:
            continue
        if receipt["status"] != 1:
            record.status = AnchorTxStatus.FAILED
            logger.error("anchor.tx.reverted epoch=%s tx_hash=0x%s", epoch.number, record.tx_hash.hex())
            continue
        record.status = AnchorTxStatus.MINED
        record.block_number = int(receipt["blockNumber"])
        record.block_hash = bytes(receipt["blockHash"])
        record.gas_used = int(receipt["gasUsed"])
        if head - record.block_number + 1 < confirmations:
            return
        on_chain = read_chain_epoch(chain, epoch.number)
        epoch.status = EpochStatus.ANCHORED
        epoch.anchor_tx_hash = record.tx_hash
        epoch.anchor_block = record.block_number
        epoch.activates_at = datetime.fromtimestamp(on_chain.activates_at, tz=UTC)
        logger.info(
            "anchor.confirmed epoch=%s tx_hash=0x%s block=%s gas_used=%s",
            epoch.number,
            record.tx_hash.hex(),
            record.block_number,
            record.gas_used,
        )
        return

    if chain_last_epoch(chain) >= epoch.number:
        # Anchored by a transaction this database never recorded (restored backup, manual send).
        record = read_chain_epoch(chain, epoch.number)
        if record.claims_root == epoch.claims_root:
            epoch.status = EpochStatus.ANCHORED
            epoch.activates_at = datetime.fromtimestamp(record.activates_at, tz=UTC)
            logger.warning("anchor.adopted_without_receipt epoch=%s", epoch.number)
        return

    live = [r for r in records if r.status in (AnchorTxStatus.SIGNED, AnchorTxStatus.SENT)]
    if not live:
        epoch.status = EpochStatus.BUILT
        logger.warning("anchor.retry epoch=%s reason=no_live_transaction", epoch.number)
        return
    newest = max(live, key=lambda r: r.max_fee_per_gas)
    age = (datetime.now(tz=UTC) - newest.created_at).total_seconds()
    if age < REPLACE_AFTER_SECONDS:
        _broadcast(chain, newest)
        return
    _replace(db, chain, anchorer, newest)


def _replace(db: DbSession, chain: ChainContext, anchorer: LocalAccount, stuck: AnchorTransaction) -> None:
    """Re-sign the stuck transaction's call with the same nonce and fees raised by 12.5 %."""
    transaction = _decode_for_replacement(chain, stuck)
    max_fee = _bump(stuck.max_fee_per_gas)
    priority_fee = _bump(stuck.max_priority_fee_per_gas)
    transaction.update({"maxFeePerGas": max_fee, "maxPriorityFeePerGas": priority_fee})
    signed = anchorer.sign_transaction(transaction)
    replacement = AnchorTransaction(
        tx_hash=bytes(signed.hash),
        epoch=stuck.epoch,
        sender=stuck.sender,
        nonce=stuck.nonce,
        raw_tx=bytes(signed.raw_transaction),
        max_fee_per_gas=max_fee,
        max_priority_fee_per_gas=priority_fee,
        status=AnchorTxStatus.SIGNED,
    )
    db.add(replacement)
    db.commit()
    logger.info(
        "anchor.tx.replaced epoch=%s old_tx_hash=0x%s tx_hash=0x%s nonce=%s max_fee=%s",
        stuck.epoch,
        stuck.tx_hash.hex(),
        replacement.tx_hash.hex(),
        stuck.nonce,
        max_fee,
    )
    _broadcast(chain, replacement)


def _bump(fee: int) -> int:
    return math.ceil(fee * FEE_BUMP_NUMERATOR / FEE_BUMP_DENOMINATOR)


def _decode_for_replacement(chain: ChainContext, record: AnchorTransaction) -> dict:
    from eth_account._utils.typed_transactions import TypedTransaction  # noqa: PLC0415

    decoded = TypedTransaction.from_bytes(HexBytes(record.raw_tx)).as_dict()
    return {
        "type": 2,
        "chainId": decoded["chainId"],
        "nonce": decoded["nonce"],
        "gas": decoded["gas"],
        "to": chain.distributor.address,
        "value": decoded["value"],
        "data": HexBytes(decoded["data"]),
        "maxFeePerGas": decoded["maxFeePerGas"],
        "maxPriorityFeePerGas": decoded["maxPriorityFeePerGas"],
    }


def _check_anchored(db: DbSession, chain: ChainContext, epoch: Epoch) -> None:
    record = db.get(AnchorTransaction, epoch.anchor_tx_hash) if epoch.anchor_tx_hash else None
    if record is not None and record.block_number is not None:
        try:
            block = chain.w3.eth.get_block(record.block_number)
        except Exception as error:  # noqa: BLE001
            raise classify(error) from error
        if bytes(block["hash"]) != record.block_hash:
            # A reorg moved or dropped the transaction: look for it again, never send twice.
            record.status = AnchorTxStatus.SENT
            record.block_number = record.block_hash = None
            epoch.status = EpochStatus.SUBMITTED
            logger.warning("anchor.reorg epoch=%s tx_hash=0x%s", epoch.number, record.tx_hash.hex())
            return
    on_chain = read_chain_epoch(chain, epoch.number)
    if on_chain.revoked:
        epoch.status = EpochStatus.REVOKED
        logger.warning("anchor.revoked epoch=%s", epoch.number)
        return
    if chain.block_timestamp() >= on_chain.activates_at:
        epoch.status = EpochStatus.ACTIVE
        logger.info("anchor.active epoch=%s", epoch.number)


def _receipt(chain: ChainContext, tx_hash: bytes) -> dict | None:
    try:
        return dict(chain.w3.eth.get_transaction_receipt(HexBytes(tx_hash)))
    except Exception as error:  # noqa: BLE001
        if "not found" in str(error).lower() or type(error).__name__ == "TransactionNotFound":
            return None
        raise classify(error) from error


__all__ = ["AnchorMismatch", "TransactionReverted", "drive_anchoring", "read_chain_epoch"]
