"""The claim indexer and the earnings built on it, against claims sent to a real anvil."""

import pytest
from sqlalchemy import select, update

from ledger.chain.anchoring import drive_anchoring
from ledger.chain.indexer import CURSOR_NAME, index_claims
from ledger.earnings.service import claim_proof, earnings_of
from ledger.errors import NotFound
from ledger.models import ChainClaim, IndexerCursor
from tests.chain.conftest import ChainSetup, build_first_epoch, deploy

pytestmark = pytest.mark.chain


def send_claim(setup: ChainSetup, factory, address: str) -> dict:
    """Claim for `address` with the active proof, sent by a dev account as any relayer could."""
    chain = setup.context()
    with factory() as db:
        proof = claim_proof(db, address, distributor=chain.distributor.address, chain_id=chain.chain_id)
    sender = setup.node.accounts[5]
    call = chain.distributor.functions.claim(address, proof.cumulative_amount, [bytes.fromhex(node[2:]) for node in proof.proof])
    transaction = call.build_transaction({"from": sender.address, "nonce": setup.w3.eth.get_transaction_count(sender.address)})
    tx_hash = setup.w3.eth.send_raw_transaction(sender.sign_transaction(transaction).raw_transaction)
    receipt = setup.w3.eth.wait_for_transaction_receipt(tx_hash, poll_latency=0.01)
    assert receipt["status"] == 1
    return receipt


def indexed(factory) -> list[ChainClaim]:
    with factory() as db:
        return list(db.scalars(select(ChainClaim).order_by(ChainClaim.block_number, ChainClaim.log_index)))


@pytest.fixture
def anchored(chain_setup, factory, chain_settings) -> list[str]:
    contributors = build_first_epoch(factory, chain_settings)
    drive_anchoring(factory, chain_setup.context(), chain_setup.anchorer, confirmations=1)
    return contributors


def test_indexer_idempotent_on_rescan(chain_setup, factory, anchored):
    chain = chain_setup.context()
    receipts = [send_claim(chain_setup, factory, address) for address in anchored]

    assert index_claims(factory, chain, confirmations=1) == 3
    assert index_claims(factory, chain, confirmations=1) == 0
    with factory.begin() as db:
        db.execute(update(IndexerCursor).where(IndexerCursor.name == CURSOR_NAME).values(block_number=0, block_hash=None))
    assert index_claims(factory, chain, confirmations=1) == 0

    rows = indexed(factory)
    assert [(row.tx_hash, row.log_index) for row in rows] == [
        (bytes(receipt["transactionHash"]), 0) for receipt in receipts
    ]
    assert {row.account for row in rows} == set(anchored)


def test_indexer_waits_for_confirmations(chain_setup, factory, anchored):
    chain = chain_setup.context()
    send_claim(chain_setup, factory, anchored[0])

    assert index_claims(factory, chain, confirmations=3) == 0
    chain_setup.rpc("anvil_mine", hex(2))
    assert index_claims(factory, chain, confirmations=3) == 1


def test_indexer_forgets_reorged_claims(chain_setup, factory, anchored):
    chain = chain_setup.context()
    first = send_claim(chain_setup, factory, anchored[0])
    index_claims(factory, chain, confirmations=1)
    before_second = chain_setup.rpc("evm_snapshot")
    dropped = send_claim(chain_setup, factory, anchored[1])
    assert index_claims(factory, chain, confirmations=1) == 1

    chain_setup.rpc("evm_revert", before_second)
    chain_setup.rpc("anvil_mine", hex(2))
    replacement = send_claim(chain_setup, factory, anchored[2])
    index_claims(factory, chain, confirmations=1)

    hashes = [row.tx_hash for row in indexed(factory)]
    assert hashes == [bytes(first["transactionHash"]), bytes(replacement["transactionHash"])]
    assert bytes(dropped["transactionHash"]) not in hashes
    with factory() as db:
        assert earnings_of(db, anchored[1]).claimed == 0


def test_earnings_claimable_is_active_minus_claimed(chain_setup, factory, anchored):
    chain = chain_setup.context()
    address = anchored[0]
    with factory() as db:
        before = earnings_of(db, address)
    assert before.active_epoch == 1
    assert before.claimed == 0
    assert before.claimable == before.cumulative_amount > 0

    send_claim(chain_setup, factory, address)
    index_claims(factory, chain, confirmations=1)

    with factory() as db:
        after = earnings_of(db, address)
    assert after.claimed == before.cumulative_amount
    assert after.claimable == 0
    assert chain.token.functions.balanceOf(address).call() == before.cumulative_amount


def test_no_proof_before_root_active(anvil, tmp_path, factory, chain_settings):
    setup = deploy(anvil, tmp_path, challenge_period=3_600)
    contributors = build_first_epoch(factory, chain_settings)
    drive_anchoring(factory, setup.context(), setup.anchorer, confirmations=1)

    with factory() as db, pytest.raises(NotFound) as raised:
        claim_proof(db, contributors[0], distributor=None, chain_id=None)
    assert raised.value.code == "no_active_epoch"
    with factory() as db:
        pending = earnings_of(db, contributors[0])
    assert pending.claimable == 0
    assert pending.pending_amount > 0
