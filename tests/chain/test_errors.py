"""RPC and node failures, produced for real against anvil or a local socket, and how they map to
the service's own errors."""

import logging
import socket
import threading
from collections.abc import Iterator

import pytest
from eth_account import Account
from web3 import Web3

from ledger.chain.anchoring import drive_anchoring
from ledger.chain.contracts import deploy_contracts, distributor_contract
from ledger.chain.devnet import AnvilNode
from ledger.chain.errors import (
    AlreadyKnown,
    InsufficientFunds,
    NonceTooLow,
    ReplacementUnderpriced,
    RpcConnectionRefused,
    RpcTimeout,
    TransactionReverted,
    classify,
)
from ledger.models import EpochStatus
from tests.chain.conftest import EMISSION_PER_EPOCH, ChainSetup, build_first_epoch, load_epoch

pytestmark = pytest.mark.chain

GWEI = 10**9


def send_error(w3: Web3, raw: bytes) -> Exception:
    with pytest.raises(Exception) as raised:
        w3.eth.send_raw_transaction(raw)
    return raised.value


def transfer(account, nonce: int, *, value: int = 1, max_fee: int = 50 * GWEI, priority: int = 2 * GWEI) -> bytes:
    transaction = {
        "type": 2,
        "chainId": 31337,
        "nonce": nonce,
        "to": "0x000000000000000000000000000000000000dEaD",
        "value": value,
        "gas": 21_000,
        "maxFeePerGas": max_fee,
        "maxPriorityFeePerGas": priority,
    }
    return bytes(account.sign_transaction(transaction).raw_transaction)


@pytest.fixture
def w3(anvil: AnvilNode) -> Iterator[Web3]:
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    yield w3
    w3.provider.make_request("evm_setAutomine", [True])


def test_nonce_too_low(w3, anvil):
    sender = anvil.accounts[8]
    nonce = w3.eth.get_transaction_count(sender.address)
    w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(transfer(sender, nonce)), poll_latency=0.01)

    error = send_error(w3, transfer(sender, nonce, value=2))

    assert isinstance(classify(error), NonceTooLow)


def test_already_known_and_replacement_underpriced(w3, anvil):
    sender = anvil.accounts[8]
    nonce = w3.eth.get_transaction_count(sender.address)
    w3.provider.make_request("evm_setAutomine", [False])
    first = transfer(sender, nonce)
    w3.eth.send_raw_transaction(first)

    assert isinstance(classify(send_error(w3, first)), AlreadyKnown)
    same_fees = transfer(sender, nonce, value=2)
    assert isinstance(classify(send_error(w3, same_fees)), ReplacementUnderpriced)
    w3.provider.make_request("evm_mine", [])


def test_insufficient_funds(w3):
    penniless = Account.create()

    error = send_error(w3, transfer(penniless, 0))

    assert isinstance(classify(error), InsufficientFunds)


def test_reverted_call(w3, anvil):
    admin = anvil.accounts[0]
    deployment = deploy_contracts(
        w3, admin, admin=admin.address, anchorer=admin.address, guardian=admin.address,
        emission_per_epoch=EMISSION_PER_EPOCH, challenge_period=0,
    )  # fmt: skip
    distributor = distributor_contract(w3, deployment.distributor_address)
    with pytest.raises(Exception) as raised:
        distributor.functions.revoke(1).estimate_gas({"from": anvil.accounts[9].address})

    mapped = classify(raised.value)
    assert isinstance(mapped, TransactionReverted)
    assert mapped.data is not None and mapped.data.startswith("0xe2517d3f")  # AccessControlUnauthorizedAccount


def test_connection_refused():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}", request_kwargs={"timeout": 2}))

    with pytest.raises(Exception) as raised:
        w3.eth.block_number

    assert isinstance(classify(raised.value), RpcConnectionRefused)


def test_timeout():
    # A server that accepts connections and never sends a response.
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        # No web3 retries: one request, one timeout.
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 0.5}, exception_retry_configuration=None))
        with pytest.raises(Exception) as raised:
            w3.eth.block_number
        assert isinstance(classify(raised.value), RpcTimeout)
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        server.close()


def test_unfunded_anchorer_logged_then_retried(anvil, tmp_path, factory, chain_settings, caplog):
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    admin, anchorer = anvil.accounts[0], Account.create()
    deployment = deploy_contracts(
        w3, admin, admin=admin.address, anchorer=anchorer.address, guardian=admin.address,
        emission_per_epoch=EMISSION_PER_EPOCH, challenge_period=0,
    )  # fmt: skip
    setup = ChainSetup(anvil, w3, deployment, tmp_path / "unused.json", admin, anchorer, admin, 0)
    build_first_epoch(factory, chain_settings)
    chain = setup.context()

    with caplog.at_level(logging.INFO), pytest.raises(InsufficientFunds):
        drive_anchoring(factory, chain, anchorer, confirmations=1)

    [line] = [record.getMessage() for record in caplog.records if "anchor.tx.send_failed" in record.getMessage()]
    assert "epoch=1 tx_hash=0x" in line
    assert "error_type=InsufficientFunds" in line
    assert load_epoch(factory, 1).status == EpochStatus.BUILT

    setup.rpc("anvil_setBalance", anchorer.address, hex(10**18))
    drive_anchoring(factory, chain, anchorer, confirmations=1)

    assert load_epoch(factory, 1).status == EpochStatus.ACTIVE
    assert w3.eth.get_transaction_count(anchorer.address) == 1
