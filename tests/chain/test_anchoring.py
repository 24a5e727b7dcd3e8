"""The anchoring state machine against a real anvil and PostgreSQL: fee replacement, reorgs,
a node restart, guardian revocation, and the per-signer nonce allocator."""

import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from web3.exceptions import TransactionNotFound

from ledger.chain.anchoring import bump_fee, drive_anchoring
from ledger.chain.devnet import start_anvil
from ledger.chain.errors import RpcUnavailable
from ledger.chain.nonces import allocate_nonce
from ledger.db import unit_of_work
from ledger.intake.withdrawal import withdraw_session
from ledger.epochs.build import build_epoch
from ledger.epochs.service import close_epoch
from ledger.intake.service import submit_sessions
from ledger.models import AnchorTransaction, AnchorTxStatus, Entitlement, EpochStatus, Session
from ledger.worker import Backoff, Worker
from tests.chain.conftest import build_first_epoch, deploy, load_epoch
from tests.ledger.factories import submission

pytestmark = pytest.mark.chain


def anchor_transactions(factory) -> list[AnchorTransaction]:
    with factory() as db:
        return list(db.scalars(select(AnchorTransaction).order_by(AnchorTransaction.created_at)))


# ---------------------------------------------------------------------------------------------
# fees


def test_bump_fee_rounds_up():
    assert bump_fee(1_000) == 1_125
    assert bump_fee(1_001) == 1_127
    assert bump_fee(8) == 9
    assert bump_fee(0) == 1
    assert bump_fee(10**30 + 1) == 1_125 * 10**27 + 2


def test_stuck_anchor_replaced_with_same_nonce(chain_setup, factory, chain_settings):
    build_first_epoch(factory, chain_settings)
    chain = chain_setup.context()
    chain_setup.rpc("evm_setAutomine", False)
    try:
        drive_anchoring(factory, chain, chain_setup.anchorer, confirmations=1, replace_after_seconds=3_600, receipt_wait_seconds=0)
        [first] = anchor_transactions(factory)
        assert first.status == AnchorTxStatus.SENT
        assert load_epoch(factory, 1).status == EpochStatus.SUBMITTED

        drive_anchoring(factory, chain, chain_setup.anchorer, confirmations=1, replace_after_seconds=0)

        old, new = anchor_transactions(factory)
        assert old.tx_hash == first.tx_hash
        assert new.nonce == old.nonce
        assert new.max_fee_per_gas >= -(-old.max_fee_per_gas * 1125 // 1000)
        assert new.max_priority_fee_per_gas >= -(-old.max_priority_fee_per_gas * 1125 // 1000)
        assert new.status == AnchorTxStatus.SENT
        pool = chain_setup.w3.eth.get_transaction(new.tx_hash)
        assert pool["blockNumber"] is None
        chain_setup.rpc("evm_mine")
    finally:
        chain_setup.rpc("evm_setAutomine", True)

    drive_anchoring(factory, chain, chain_setup.anchorer, confirmations=1, replace_after_seconds=3_600)

    statuses = {record.tx_hash: record.status for record in anchor_transactions(factory)}
    assert statuses == {old.tx_hash: AnchorTxStatus.REPLACED, new.tx_hash: AnchorTxStatus.MINED}
    epoch = load_epoch(factory, 1)
    assert epoch.status == EpochStatus.ACTIVE
    assert epoch.anchor_tx_hash == new.tx_hash
    assert len(chain_setup.anchored_events()) == 1


def test_underpriced_anchor_replaced_above_base_fee(chain_setup, factory, chain_settings):
    build_first_epoch(factory, chain_settings)
    chain = chain_setup.context()
    chain_setup.rpc("evm_setAutomine", False)
    try:
        drive_anchoring(factory, chain, chain_setup.anchorer, confirmations=1, replace_after_seconds=3_600, receipt_wait_seconds=0)
        [low] = anchor_transactions(factory)
        # The base fee jumps above the transaction's max fee: blocks go on without it, and anvil
        # 1.7.1 drops it from its pool.
        high_base_fee = 10 * low.max_fee_per_gas
        chain_setup.rpc("anvil_setNextBlockBaseFeePerGas", hex(high_base_fee))
        chain_setup.rpc("evm_mine")
        with pytest.raises(TransactionNotFound):
            chain_setup.w3.eth.get_transaction_receipt(low.tx_hash)

        drive_anchoring(factory, chain, chain_setup.anchorer, confirmations=1, replace_after_seconds=0)

        _, replacement = anchor_transactions(factory)
        assert replacement.nonce == low.nonce
        assert replacement.max_fee_per_gas >= 2 * chain_setup.w3.eth.get_block("latest")["baseFeePerGas"]
        chain_setup.rpc("evm_mine")
    finally:
        chain_setup.rpc("evm_setAutomine", True)

    drive_anchoring(factory, chain, chain_setup.anchorer, confirmations=1, replace_after_seconds=3_600)

    assert load_epoch(factory, 1).status == EpochStatus.ACTIVE
    assert load_epoch(factory, 1).anchor_tx_hash == replacement.tx_hash
    assert len(chain_setup.anchored_events()) == 1


# ---------------------------------------------------------------------------------------------
# confirmations and reorgs


def test_reorg_dropping_anchor_resends_it(anvil, tmp_path, factory, chain_settings):
    setup = deploy(anvil, tmp_path, challenge_period=3_600)
    build_first_epoch(factory, chain_settings)
    chain = setup.context()
    before_anchor = setup.rpc("evm_snapshot")

    drive_anchoring(factory, chain, setup.anchorer, confirmations=2)
    [record] = anchor_transactions(factory)
    assert record.status == AnchorTxStatus.MINED
    assert load_epoch(factory, 1).status == EpochStatus.SUBMITTED
    setup.rpc("evm_mine")
    drive_anchoring(factory, chain, setup.anchorer, confirmations=2)
    anchored = load_epoch(factory, 1)
    assert anchored.status == EpochStatus.ANCHORED
    first_block = anchored.anchor_block

    # Drop the anchor block and build a longer chain without it.
    setup.rpc("evm_revert", before_anchor)
    setup.rpc("anvil_mine", hex(3))
    assert setup.anchored_events() == []

    drive_anchoring(factory, chain, setup.anchorer, confirmations=2)

    assert load_epoch(factory, 1).status == EpochStatus.SUBMITTED
    [resent] = anchor_transactions(factory)
    assert resent.tx_hash == record.tx_hash
    setup.rpc("evm_mine")
    drive_anchoring(factory, chain, setup.anchorer, confirmations=2)
    epoch = load_epoch(factory, 1)
    assert epoch.status == EpochStatus.ANCHORED
    assert epoch.anchor_block != first_block
    events = setup.anchored_events()
    assert len(events) == 1
    assert bytes(events[0]["transactionHash"]) == record.tx_hash


def test_anchor_waits_for_confirmations(anvil, tmp_path, factory, chain_settings):
    setup = deploy(anvil, tmp_path, challenge_period=3_600)
    build_first_epoch(factory, chain_settings)
    chain = setup.context()

    drive_anchoring(factory, chain, setup.anchorer, confirmations=3)
    assert load_epoch(factory, 1).status == EpochStatus.SUBMITTED
    setup.rpc("evm_mine")
    drive_anchoring(factory, chain, setup.anchorer, confirmations=3)
    assert load_epoch(factory, 1).status == EpochStatus.SUBMITTED
    setup.rpc("evm_mine")
    drive_anchoring(factory, chain, setup.anchorer, confirmations=3)
    assert load_epoch(factory, 1).status == EpochStatus.ANCHORED

    setup.rpc("evm_increaseTime", 3_600)
    setup.rpc("evm_mine")
    drive_anchoring(factory, chain, setup.anchorer, confirmations=3)
    assert load_epoch(factory, 1).status == EpochStatus.ACTIVE


# ---------------------------------------------------------------------------------------------
# node down in the middle of anchoring


def test_node_restart_mid_anchoring(tmp_path, factory, chain_settings, caplog):
    state = tmp_path / "anvil-state.json"
    node = start_anvil(state_path=state)
    try:
        setup = deploy(node, tmp_path, challenge_period=0)
        build_first_epoch(factory, chain_settings)
        chain = setup.context()
        worker = Worker(settings=chain_settings, factory=factory, chain=chain, anchorer=setup.anchorer)
        setup.rpc("evm_setAutomine", False)
        drive_anchoring(factory, chain, setup.anchorer, confirmations=1, receipt_wait_seconds=0)
        [record] = anchor_transactions(factory)
        assert record.status == AnchorTxStatus.SENT

        # SIGTERM makes anvil write its state to `state`; the pending transaction may be lost.
        node.stop()
        assert state.is_file()
        with caplog.at_level(logging.WARNING), pytest.raises(RpcUnavailable):
            drive_anchoring(factory, chain, setup.anchorer, confirmations=1)
        [failed] = [line.getMessage() for line in caplog.records if "anchor.step_failed" in line.getMessage()]
        assert f"epoch=1 status=submitted tx_hash=0x{record.tx_hash.hex()}" in failed
        assert "error_type=RpcConnectionRefused" in failed
        worker.tick()
        assert worker.chain_backoff.failures == 1
        assert load_epoch(factory, 1).status == EpochStatus.SUBMITTED

        node = start_anvil(port=node.port, state_path=state)
        assert setup.w3.eth.get_code(setup.deployment.distributor_address) != b""
        # The first tick after the restart sends the stored transaction again, the next one
        # finds its receipt.
        drive_anchoring(factory, chain, setup.anchorer, confirmations=1)
        drive_anchoring(factory, chain, setup.anchorer, confirmations=1)

        epoch = load_epoch(factory, 1)
        assert epoch.status == EpochStatus.ACTIVE
        assert epoch.anchor_tx_hash == record.tx_hash
        assert len(setup.anchored_events()) == 1
        worker.stop()
    finally:
        node.stop()


def test_backoff_doubles_up_to_cap():
    backoff = Backoff(base=5.0, cap=60.0)
    assert backoff.ready(0.0)

    delays = [backoff.failed(100.0) for _ in range(6)]

    assert delays == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0]
    assert not backoff.ready(159.0)
    assert backoff.ready(160.0)
    backoff.succeeded()
    assert backoff.failures == 0
    assert backoff.ready(0.0)


# ---------------------------------------------------------------------------------------------
# guardian revocation


def test_revoked_epoch_rebuilt_and_anchored_again(anvil, tmp_path, factory, chain_settings):
    setup = deploy(anvil, tmp_path, challenge_period=3_600)
    contributors = build_first_epoch(factory, chain_settings)
    chain = setup.context()
    drive_anchoring(factory, chain, setup.anchorer, confirmations=1)
    first = load_epoch(factory, 1)
    assert first.status == EpochStatus.ANCHORED

    distributor = chain.distributor.functions
    revoke = distributor.revoke(1).build_transaction(
        {"from": setup.guardian.address, "nonce": setup.w3.eth.get_transaction_count(setup.guardian.address)}
    )
    revoke_hash = setup.w3.eth.send_raw_transaction(setup.guardian.sign_transaction(revoke).raw_transaction)
    assert setup.w3.eth.wait_for_transaction_receipt(revoke_hash, poll_latency=0.01)["status"] == 1
    drive_anchoring(factory, chain, setup.anchorer, confirmations=1)
    assert load_epoch(factory, 1).status == EpochStatus.REVOKED

    # The operator withdraws the session that made the roots wrong before the rebuild.
    with factory() as db:
        wrong = db.scalar(select(Session).where(Session.contributor == contributors[0]))
        assert wrong is not None
    with unit_of_work(factory) as db:
        withdraw_session(db, session_id=uuid.UUID(str(wrong.session_id)), contributor=contributors[0], now=datetime.now(tz=UTC))

    drive_anchoring(factory, chain, setup.anchorer, confirmations=1)

    rebuilt = load_epoch(factory, 1)
    assert rebuilt.status == EpochStatus.ANCHORED
    assert rebuilt.claims_root != first.claims_root
    assert rebuilt.contributions_root != first.contributions_root
    on_chain = distributor.epochs(1).call()
    assert (on_chain[0], on_chain[1], on_chain[4]) == (rebuilt.claims_root, rebuilt.contributions_root, False)
    statuses = [record.status for record in anchor_transactions(factory)]
    assert statuses == [AnchorTxStatus.REVOKED, AnchorTxStatus.MINED]
    assert [event["args"]["claimsRoot"] for event in setup.anchored_events()] == [first.claims_root, rebuilt.claims_root]

    setup.rpc("evm_increaseTime", 3_600)
    setup.rpc("evm_mine")
    drive_anchoring(factory, chain, setup.anchorer, confirmations=1)
    assert load_epoch(factory, 1).status == EpochStatus.ACTIVE
    assert distributor.activeClaimsRoot().call() == rebuilt.claims_root


# ---------------------------------------------------------------------------------------------
# nonces


def test_nonce_allocator_per_signer(chain_setup, factory):
    chain = chain_setup.context()
    anchorer, other = chain_setup.anchorer.address, chain_setup.node.accounts[7].address
    on_chain = chain_setup.w3.eth.get_transaction_count(anchorer, "pending")

    with unit_of_work(factory) as db:
        first = allocate_nonce(db, chain, anchorer)
        second = allocate_nonce(db, chain, anchorer)
        unrelated = allocate_nonce(db, chain, other)

    assert (first, second) == (on_chain, on_chain + 1)
    assert unrelated == chain_setup.w3.eth.get_transaction_count(other, "pending")

    with unit_of_work(factory) as db:
        assert allocate_nonce(db, chain, anchorer) == on_chain + 2

    with pytest.raises(RuntimeError), unit_of_work(factory) as db:
        allocate_nonce(db, chain, anchorer)
        raise RuntimeError("rolled back")
    with unit_of_work(factory) as db:
        assert allocate_nonce(db, chain, anchorer) == on_chain + 3

    # Transactions sent with the same key from elsewhere move the next nonce past them.
    sender = chain_setup.node.accounts[7]
    for _ in range(3):
        transfer = {"to": anchorer, "value": 1, "gas": 21_000, "chainId": chain.chain_id,
                    "nonce": chain_setup.w3.eth.get_transaction_count(other, "pending"),
                    "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}  # fmt: skip
        chain_setup.w3.eth.send_raw_transaction(sender.sign_transaction(transfer).raw_transaction)
    with unit_of_work(factory) as db:
        assert allocate_nonce(db, chain, other) == unrelated + 3


def test_reorg_before_confirmations_moves_anchor(anvil, tmp_path, factory, chain_settings):
    setup = deploy(anvil, tmp_path, challenge_period=3_600)
    build_first_epoch(factory, chain_settings)
    chain = setup.context()
    before_anchor = setup.rpc("evm_snapshot")
    drive_anchoring(factory, chain, setup.anchorer, confirmations=3)
    [record] = anchor_transactions(factory)
    assert record.status == AnchorTxStatus.MINED
    first_block = record.block_number

    setup.rpc("evm_revert", before_anchor)
    setup.rpc("anvil_mine", hex(2))
    drive_anchoring(factory, chain, setup.anchorer, confirmations=3)

    [resent] = anchor_transactions(factory)
    assert resent.status == AnchorTxStatus.SENT
    assert load_epoch(factory, 1).status == EpochStatus.SUBMITTED
    drive_anchoring(factory, chain, setup.anchorer, confirmations=3)
    [moved] = anchor_transactions(factory)
    assert moved.status == AnchorTxStatus.MINED
    assert moved.block_number > first_block
    setup.rpc("anvil_mine", hex(2))
    drive_anchoring(factory, chain, setup.anchorer, confirmations=3)
    assert load_epoch(factory, 1).status == EpochStatus.ANCHORED
    assert len(setup.anchored_events()) == 1


def test_one_leader_among_workers(chain_setup, factory, chain_settings):
    chain = chain_setup.context()
    first = Worker(settings=chain_settings, factory=factory, chain=chain, anchorer=chain_setup.anchorer)
    second = Worker(settings=chain_settings, factory=factory, chain=chain, anchorer=chain_setup.anchorer)
    try:
        assert first.is_leader()
        assert not second.is_leader()
        assert first.is_leader()

        first.stop()

        assert second.is_leader()
        assert not first.is_leader()
    finally:
        first.stop()
        second.stop()


def test_revoke_rebuilds_later_built_epoch(anvil, tmp_path, factory, chain_settings):
    setup = deploy(anvil, tmp_path, challenge_period=3_600)
    contributors = build_first_epoch(factory, chain_settings)
    chain = setup.context()
    drive_anchoring(factory, chain, setup.anchorer, confirmations=1)
    assert load_epoch(factory, 1).status == EpochStatus.ANCHORED

    # Epoch 2 is built on top of epoch 1's entitlements while epoch 1 is still pending.
    now = datetime.now(tz=UTC)
    with unit_of_work(factory) as db:
        submit_sessions(db, [submission(contributors[1], now - timedelta(minutes=30))], settings=chain_settings, now=now)
    with unit_of_work(factory) as db:
        close_epoch(db, settings=chain_settings, now=now, force=True)
        build_epoch(db, 2)
    with factory() as db:
        old_second = {row.contributor: row.cumulative_amount for row in db.scalars(select(Entitlement).where(Entitlement.epoch == 2))}

    revoke = chain.distributor.functions.revoke(1).build_transaction(
        {"from": setup.guardian.address, "nonce": setup.w3.eth.get_transaction_count(setup.guardian.address)}
    )
    revoke_hash = setup.w3.eth.send_raw_transaction(setup.guardian.sign_transaction(revoke).raw_transaction)
    assert setup.w3.eth.wait_for_transaction_receipt(revoke_hash, poll_latency=0.01)["status"] == 1
    drive_anchoring(factory, chain, setup.anchorer, confirmations=1)
    with factory() as db:
        wrong = db.scalar(select(Session).where(Session.contributor == contributors[0], Session.epoch == 1))
    with unit_of_work(factory) as db:
        withdraw_session(db, session_id=wrong.session_id, contributor=contributors[0], now=datetime.now(tz=UTC))

    drive_anchoring(factory, chain, setup.anchorer, confirmations=1)

    assert load_epoch(factory, 1).status == EpochStatus.ANCHORED
    assert load_epoch(factory, 2).status == EpochStatus.BUILT
    with factory() as db:
        first = {row.contributor: row.cumulative_amount for row in db.scalars(select(Entitlement).where(Entitlement.epoch == 1))}
        second = {row.contributor: row.cumulative_amount for row in db.scalars(select(Entitlement).where(Entitlement.epoch == 2))}
    # The withdrawn session's tokens are debited in the rebuilt epoch 1 (up to the one base unit
    # a largest-remainder allocation may add), and epoch 2 starts from the rebuilt amounts.
    assert first.get(contributors[0], 0) in (0, 1)
    assert second.get(contributors[0], 0) == first.get(contributors[0], 0)
    assert old_second[contributors[0]] > second.get(contributors[0], 0)
    assert second[contributors[1]] == first[contributors[1]] + chain_settings.emission_per_epoch
    on_chain = chain.distributor.functions.epochs(1).call()
    assert on_chain[0] == load_epoch(factory, 1).claims_root
