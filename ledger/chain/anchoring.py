"""Anchoring built epochs on chain as a persisted state machine.

    built --sign, store, send--> submitted --N confirmations--> anchored --challenge period--> active
      ^                            |    ^                          |   |
      +-- reverted / nonce taken --+    +------ reorg drops tx ----+   +--guardian--> revoked
      +------------------------------ rebuilt from the database -------------------------+

Each transition is its own database transaction, and every signed transaction is committed
before it is sent, so after a crash at any step the next run finds it. Before signing, the
contract is read: an epoch the contract already stores with the same roots is adopted instead of
anchored a second time. Every hash signed for a nonce stays tracked until one of them is mined.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from eth_account.signers.local import LocalAccount
from eth_account.typed_transactions import TypedTransaction
from hexbytes import HexBytes
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker
from web3.contract import Contract
from web3.exceptions import TimeExhausted

from ledger.chain.client import ChainContext
from ledger.chain.crashpoints import crash_point
from ledger.chain.errors import (
    AlreadyKnown,
    ChainError,
    InsufficientFunds,
    NonceTooLow,
    ReplacementUnderpriced,
    TransactionReverted,
    classify,
)
from ledger.chain.nonces import allocate_nonce
from ledger.chain.revocation import reset_revoked_epoch
from ledger.db import unit_of_work
from ledger.models import AnchorTransaction, AnchorTxStatus, Epoch, EpochStatus

logger = logging.getLogger(__name__)

#: Default seconds a transaction may stay unmined before it is replaced with higher fees.
REPLACE_AFTER_SECONDS = 120.0
#: Default seconds to wait for the receipt right after the first send of an anchor. A node that
#: mines on every transaction (anvil) often has it by then, so one tick finishes the epoch.
RECEIPT_WAIT_SECONDS = 2.0
#: Fee increase of a same-nonce replacement: 12.5 %, rounded up.
FEE_BUMP_NUMERATOR, FEE_BUMP_DENOMINATOR = 1125, 1000
GAS_LIMIT_MARGIN_PERCENT = 20
#: Transaction records that belong to the current attempt at anchoring an epoch.
CURRENT = (AnchorTxStatus.SIGNED, AnchorTxStatus.SENT, AnchorTxStatus.MINED)
#: Transitions one epoch may take in one call; more means a bug, not a slow chain.
MAX_STEPS_PER_EPOCH = 8


class AnchorMismatch(ChainError):
    """The contract stores this epoch with other roots than the database, so an operator must decide."""


@dataclass(frozen=True)
class OnChainEpoch:
    """An epoch as the distributor stores it."""

    claims_root: bytes
    contributions_root: bytes
    total_entitled: int
    activates_at: int
    revoked: bool


@dataclass(frozen=True)
class AnchorSettings:
    """Waiting rules of the state machine: confirmations, and seconds before a fee bump."""

    confirmations: int
    replace_after_seconds: float = REPLACE_AFTER_SECONDS
    receipt_wait_seconds: float = RECEIPT_WAIT_SECONDS


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
    """Return the latest epoch the distributor stores."""
    try:
        return int(chain.distributor.functions.lastEpoch().call())
    except Exception as error:  # noqa: BLE001
        raise classify(error) from error


def drive_anchoring(
    factory: sessionmaker[DbSession],
    chain: ChainContext,
    anchorer: LocalAccount,
    *,
    confirmations: int,
    replace_after_seconds: float = REPLACE_AFTER_SECONDS,
    receipt_wait_seconds: float = RECEIPT_WAIT_SECONDS,
) -> None:
    """Advance every epoch between `built` and `active` by as many steps as the chain allows.

    Revoked epochs are rebuilt first. Epochs are then handled in order, and the loop stops at the
    first one that must wait, because the contract only takes consecutive epochs.
    """
    config = AnchorSettings(
        confirmations=confirmations,
        replace_after_seconds=replace_after_seconds,
        receipt_wait_seconds=receipt_wait_seconds,
    )
    with factory() as db:
        revoked = list(db.scalars(select(Epoch.number).where(Epoch.status == EpochStatus.REVOKED).order_by(Epoch.number)))
    for number in revoked:
        with unit_of_work(factory) as db:
            reset_revoked_epoch(db, number)

    with factory() as db:
        numbers = list(
            db.scalars(
                select(Epoch.number)
                .where(Epoch.status.in_([EpochStatus.BUILT, EpochStatus.SUBMITTED, EpochStatus.ANCHORED]))
                .order_by(Epoch.number)
            )
        )
    for number in numbers:
        if advance_epoch(factory, chain, anchorer, number, config) != EpochStatus.ACTIVE:
            break


def advance_epoch(
    factory: sessionmaker[DbSession], chain: ChainContext, anchorer: LocalAccount, number: int, config: AnchorSettings
) -> EpochStatus:
    """Take transitions for epoch `number`, each committed on its own, until it must wait."""
    status = None
    for _ in range(MAX_STEPS_PER_EPOCH):
        with unit_of_work(factory) as db:
            epoch = db.scalar(select(Epoch).where(Epoch.number == number).with_for_update())
            assert epoch is not None, f"epoch {number} disappeared while anchoring"
            before = epoch.status
            try:
                if before == EpochStatus.BUILT:
                    _adopt_or_submit(db, chain, anchorer, epoch, config)
                elif before == EpochStatus.SUBMITTED:
                    _check_submitted(db, chain, anchorer, epoch, config)
                elif before == EpochStatus.ANCHORED:
                    _check_anchored(db, chain, epoch)
            except ChainError as error:
                latest_tx = db.scalar(
                    select(AnchorTransaction.tx_hash)
                    .where(AnchorTransaction.epoch == number)
                    .order_by(AnchorTransaction.created_at.desc())
                    .limit(1)
                )
                logger.warning(
                    "anchor.step_failed epoch=%s status=%s tx_hash=%s error_type=%s error=%s",
                    number,
                    before.value,
                    "0x" + latest_tx.hex() if latest_tx else "-",
                    type(error).__name__,
                    error,
                )
                raise
            status = epoch.status
        if status == before or status not in (EpochStatus.SUBMITTED, EpochStatus.ANCHORED, EpochStatus.BUILT):
            return status
        if status == EpochStatus.SUBMITTED and before == EpochStatus.BUILT:
            crash_point("anchor.after_record")
    logger.error("anchor.too_many_steps epoch=%s status=%s", number, status)
    return status


# ---------------------------------------------------------------------------------------------
# built -> submitted


def _adopt_or_submit(
    db: DbSession, chain: ChainContext, anchorer: LocalAccount, epoch: Epoch, config: AnchorSettings
) -> None:
    on_chain_last = chain_last_epoch(chain)
    if on_chain_last >= epoch.number:
        record = read_chain_epoch(chain, epoch.number)
        if _same_roots(record, epoch):
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
        select(AnchorTransaction)
        .where(
            AnchorTransaction.epoch == epoch.number,
            AnchorTransaction.status.in_([AnchorTxStatus.SIGNED, AnchorTxStatus.SENT]),
        )
        .order_by(AnchorTransaction.max_fee_per_gas.desc())
        .limit(1)
    )
    if pending is None:
        pending = _sign_anchor(db, chain, anchorer, epoch)
        crash_point("anchor.before_send")
    _broadcast(chain, pending)
    crash_point("anchor.after_send")
    _wait_for_receipt(chain, pending, config.receipt_wait_seconds)
    epoch.status = EpochStatus.SUBMITTED
    logger.info("anchor.submitted epoch=%s tx_hash=0x%s nonce=%s", epoch.number, pending.tx_hash.hex(), pending.nonce)


def _wait_for_receipt(chain: ChainContext, record: AnchorTransaction, seconds: float) -> None:
    """Wait up to `seconds` for the receipt of `record`; the next state check reads it."""
    if seconds <= 0:
        return
    try:
        chain.w3.eth.wait_for_transaction_receipt(HexBytes(record.tx_hash), timeout=seconds, poll_latency=0.02)
    except TimeExhausted:
        logger.info(
            "anchor.tx.not_mined_yet epoch=%s tx_hash=0x%s waited_seconds=%s", record.epoch, record.tx_hash.hex(), seconds
        )
    except Exception as error:  # noqa: BLE001
        raise classify(error) from error


def _same_roots(record: OnChainEpoch, epoch: Epoch) -> bool:
    return (
        not record.revoked
        and record.claims_root == epoch.claims_root
        and record.contributions_root == epoch.contributions_root
    )


def _sign_anchor(db: DbSession, chain: ChainContext, anchorer: LocalAccount, epoch: Epoch) -> AnchorTransaction:
    call = chain.distributor.functions.anchor(epoch.number, epoch.claims_root, epoch.contributions_root, epoch.total_entitled)
    try:
        base_fee = int(chain.w3.eth.get_block("latest")["baseFeePerGas"])
        priority_fee = int(chain.w3.eth.max_priority_fee)
        gas = call.estimate_gas({"from": anchorer.address})
    except Exception as error:  # noqa: BLE001
        mapped = classify(error)
        logger.warning("anchor.tx.prepare_failed epoch=%s error_type=%s error=%s", epoch.number, type(mapped).__name__, mapped)
        raise mapped from error

    nonce = allocate_nonce(db, chain, anchorer.address)
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
    # Committed before sending, with the nonce reservation: a crash after the send still leaves
    # the hash to look for. The commit also ends the epoch row lock, and the leader lock keeps
    # other workers out.
    record = _store_signed(db, anchorer, transaction, epoch=epoch.number)
    logger.info(
        "anchor.tx.signed epoch=%s tx_hash=0x%s nonce=%s max_fee=%s max_priority_fee=%s",
        epoch.number,
        record.tx_hash.hex(),
        nonce,
        max_fee,
        priority_fee,
    )
    return record


def _broadcast(chain: ChainContext, record: AnchorTransaction) -> None:
    """Send the stored raw transaction. The same bytes sent again cannot become a second transaction."""
    try:
        chain.w3.eth.send_raw_transaction(record.raw_tx)
    except Exception as error:  # noqa: BLE001
        mapped = classify(error)
        if isinstance(mapped, (AlreadyKnown, NonceTooLow, ReplacementUnderpriced)):
            # The node has this transaction, or another one with its nonce (mined, or a
            # replacement with higher fees). Receipts and the contract show which one won.
            logger.info(
                "anchor.tx.known epoch=%s tx_hash=0x%s nonce=%s reason=%s",
                record.epoch,
                record.tx_hash.hex(),
                record.nonce,
                type(mapped).__name__,
            )
        else:
            level = logging.ERROR if isinstance(mapped, InsufficientFunds) else logging.WARNING
            logger.log(
                level,
                "anchor.tx.send_failed epoch=%s tx_hash=0x%s nonce=%s error_type=%s error=%s",
                record.epoch,
                record.tx_hash.hex(),
                record.nonce,
                type(mapped).__name__,
                mapped,
            )
            raise mapped from error
    if record.status == AnchorTxStatus.SIGNED:
        record.status = AnchorTxStatus.SENT
    logger.info("anchor.tx.sent epoch=%s tx_hash=0x%s nonce=%s", record.epoch, record.tx_hash.hex(), record.nonce)


# ---------------------------------------------------------------------------------------------
# submitted -> anchored


def _check_submitted(
    db: DbSession, chain: ChainContext, anchorer: LocalAccount, epoch: Epoch, config: AnchorSettings
) -> None:
    records = list(
        db.scalars(
            select(AnchorTransaction)
            .where(AnchorTransaction.epoch == epoch.number, AnchorTransaction.status.in_(CURRENT))
            .order_by(AnchorTransaction.created_at)
        )
    )
    head = chain.head()
    for record in records:
        receipt = _receipt(chain, record.tx_hash)
        if receipt is None:
            if record.status == AnchorTxStatus.MINED:
                # Seen in a block before, gone now: a reorg dropped it. Look for it again.
                logger.warning("anchor.reorg.dropped epoch=%s tx_hash=0x%s block=%s", epoch.number, record.tx_hash.hex(), record.block_number)
                record.status = AnchorTxStatus.SENT
                record.block_number = record.block_hash = None
            continue
        if receipt["status"] != 1:
            record.status = AnchorTxStatus.FAILED
            _retire_same_nonce(records, record)
            logger.error(
                "anchor.tx.reverted epoch=%s tx_hash=0x%s nonce=%s block=%s",
                epoch.number,
                record.tx_hash.hex(),
                record.nonce,
                receipt["blockNumber"],
            )
            continue
        _record_mined(record, receipt)
        _retire_same_nonce(records, record)
        depth = head - record.block_number + 1
        if depth < config.confirmations:
            logger.info(
                "anchor.waiting_confirmations epoch=%s tx_hash=0x%s confirmations=%s required=%s",
                epoch.number,
                record.tx_hash.hex(),
                max(depth, 0),
                config.confirmations,
            )
            return
        on_chain = read_chain_epoch(chain, epoch.number)
        if not _same_roots(on_chain, epoch):
            raise AnchorMismatch(
                f"anchor transaction 0x{record.tx_hash.hex()} of epoch {epoch.number} is mined, but the contract "
                f"holds claims root 0x{on_chain.claims_root.hex()}: check the deployment record"
            )
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
        on_chain = read_chain_epoch(chain, epoch.number)
        if _same_roots(on_chain, epoch):
            # Anchored by a transaction this database never recorded (restored backup, manual send).
            epoch.status = EpochStatus.ANCHORED
            epoch.activates_at = datetime.fromtimestamp(on_chain.activates_at, tz=UTC)
            logger.warning("anchor.adopted_without_receipt epoch=%s", epoch.number)
            return
        raise AnchorMismatch(
            f"epoch {epoch.number} is on chain with claims root 0x{on_chain.claims_root.hex()}, "
            f"the database has 0x{(epoch.claims_root or b'').hex()}: revoke it on chain or repair the database"
        )

    live = [record for record in records if record.status in (AnchorTxStatus.SIGNED, AnchorTxStatus.SENT)]
    if live and _nonce_taken(chain, live[0]):
        # Another transaction of the same signer used this nonce, and none of our hashes is mined.
        for record in live:
            record.status = AnchorTxStatus.REPLACED
        live = []
        logger.warning("anchor.nonce_taken epoch=%s nonce=%s", epoch.number, records[0].nonce)
    if not live:
        epoch.status = EpochStatus.BUILT
        logger.warning("anchor.retry epoch=%s reason=no_live_transaction", epoch.number)
        return

    newest = max(live, key=lambda record: record.max_fee_per_gas)
    age = (datetime.now(tz=UTC) - newest.created_at).total_seconds()
    if age < config.replace_after_seconds:
        _broadcast(chain, newest)
        return
    _replace(db, chain, anchorer, newest)


def _record_mined(record: AnchorTransaction, receipt: dict) -> None:
    block_hash = bytes(receipt["blockHash"])
    if record.status == AnchorTxStatus.MINED and record.block_hash not in (None, block_hash):
        logger.warning(
            "anchor.reorg.moved epoch=%s tx_hash=0x%s old_block=%s block=%s",
            record.epoch,
            record.tx_hash.hex(),
            record.block_number,
            receipt["blockNumber"],
        )
    record.status = AnchorTxStatus.MINED
    record.block_number = int(receipt["blockNumber"])
    record.block_hash = block_hash
    record.gas_used = int(receipt["gasUsed"])


def _retire_same_nonce(records: list[AnchorTransaction], mined: AnchorTransaction) -> None:
    """Mark the other transactions signed for `mined`'s nonce as replaced: they can never mine."""
    for other in records:
        if other is not mined and other.nonce == mined.nonce and other.status in (AnchorTxStatus.SIGNED, AnchorTxStatus.SENT):
            other.status = AnchorTxStatus.REPLACED
            logger.info("anchor.tx.superseded epoch=%s tx_hash=0x%s by=0x%s", other.epoch, other.tx_hash.hex(), mined.tx_hash.hex())


def _nonce_taken(chain: ChainContext, record: AnchorTransaction) -> bool:
    try:
        mined_count = int(chain.w3.eth.get_transaction_count(record.sender, "latest"))
    except Exception as error:  # noqa: BLE001
        raise classify(error) from error
    return mined_count > record.nonce


def _replace(db: DbSession, chain: ChainContext, anchorer: LocalAccount, stuck: AnchorTransaction) -> None:
    """Re-sign the stuck transaction's call with the same nonce and both fees raised."""
    transaction = _decode_for_replacement(chain, stuck)
    try:
        base_fee = int(chain.w3.eth.get_block("latest")["baseFeePerGas"])
    except Exception as error:  # noqa: BLE001
        raise classify(error) from error
    priority_fee = bump_fee(stuck.max_priority_fee_per_gas)
    # At least 12.5 % more, and enough for the current base fee to include it.
    max_fee = max(bump_fee(stuck.max_fee_per_gas), 2 * base_fee + priority_fee)
    transaction.update({"maxFeePerGas": max_fee, "maxPriorityFeePerGas": priority_fee})
    replacement = _store_signed(db, anchorer, transaction, epoch=stuck.epoch)
    logger.info(
        "anchor.tx.replaced epoch=%s old_tx_hash=0x%s tx_hash=0x%s nonce=%s max_fee=%s max_priority_fee=%s",
        stuck.epoch,
        stuck.tx_hash.hex(),
        replacement.tx_hash.hex(),
        stuck.nonce,
        max_fee,
        priority_fee,
    )
    _broadcast(chain, replacement)


def _store_signed(db: DbSession, anchorer: LocalAccount, transaction: dict, *, epoch: int) -> AnchorTransaction:
    """Sign an EIP-1559 anchor transaction, store it as `signed` and commit, before any send."""
    signed = anchorer.sign_transaction(transaction)
    record = AnchorTransaction(
        tx_hash=bytes(signed.hash),
        epoch=epoch,
        sender=anchorer.address,
        nonce=transaction["nonce"],
        raw_tx=bytes(signed.raw_transaction),
        max_fee_per_gas=transaction["maxFeePerGas"],
        max_priority_fee_per_gas=transaction["maxPriorityFeePerGas"],
        status=AnchorTxStatus.SIGNED,
    )
    db.add(record)
    db.commit()
    return record


def bump_fee(fee: int) -> int:
    """Return `fee` raised by 12.5 %, rounded up, and by at least 1 wei."""
    raised = -(-fee * FEE_BUMP_NUMERATOR // FEE_BUMP_DENOMINATOR)
    return max(raised, fee + 1)


def _decode_for_replacement(chain: ChainContext, record: AnchorTransaction) -> dict:
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


# ---------------------------------------------------------------------------------------------
# anchored -> active or revoked


def _check_anchored(db: DbSession, chain: ChainContext, epoch: Epoch) -> None:
    record = db.get(AnchorTransaction, epoch.anchor_tx_hash) if epoch.anchor_tx_hash else None
    if record is not None and record.block_number is not None and not _still_canonical(chain, record):
        # A reorg moved or dropped the transaction: look for it again, never send a second one
        # while any of its hashes can still mine.
        logger.warning(
            "anchor.reorg epoch=%s tx_hash=0x%s block=%s", epoch.number, record.tx_hash.hex(), record.block_number
        )
        record.status = AnchorTxStatus.SENT
        record.block_number = record.block_hash = None
        epoch.status = EpochStatus.SUBMITTED
        epoch.anchor_tx_hash = epoch.anchor_block = epoch.activates_at = None
        return
    on_chain = read_chain_epoch(chain, epoch.number)
    if on_chain.revoked:
        epoch.status = EpochStatus.REVOKED
        if record is not None:
            record.status = AnchorTxStatus.REVOKED
        logger.warning("anchor.revoked epoch=%s claims_root=0x%s", epoch.number, on_chain.claims_root.hex())
        return
    if chain.block_timestamp() >= on_chain.activates_at:
        epoch.status = EpochStatus.ACTIVE
        logger.info("anchor.active epoch=%s", epoch.number)


def _still_canonical(chain: ChainContext, record: AnchorTransaction) -> bool:
    try:
        block = chain.w3.eth.get_block(record.block_number)
    except Exception as error:  # noqa: BLE001
        if type(error).__name__ == "BlockNotFound":
            return False
        raise classify(error) from error
    return bytes(block["hash"]) == record.block_hash


def _receipt(chain: ChainContext, tx_hash: bytes) -> dict | None:
    try:
        return dict(chain.w3.eth.get_transaction_receipt(HexBytes(tx_hash)))
    except Exception as error:  # noqa: BLE001
        if "not found" in str(error).lower() or type(error).__name__ == "TransactionNotFound":
            return None
        raise classify(error) from error


__all__ = [
    "AnchorMismatch",
    "AnchorSettings",
    "TransactionReverted",
    "advance_epoch",
    "bump_fee",
    "drive_anchoring",
    "read_chain_epoch",
]
