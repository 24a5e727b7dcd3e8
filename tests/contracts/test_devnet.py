"""The local anvil helper: start, reach, stop, dev accounts and errors."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from web3 import Web3

from ledger.chain.devnet import AnvilError, AnvilNode, start_anvil

pytestmark = pytest.mark.chain

# Anvil's first dev account, as printed by anvil at start.
FIRST_DEV_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
FIRST_DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def test_dev_accounts_match_node(anvil: AnvilNode, w3: Web3):
    assert len(anvil.accounts) == 10
    assert [account.address for account in anvil.accounts] == w3.eth.accounts
    assert anvil.accounts[0].address == FIRST_DEV_ADDRESS
    assert anvil.private_keys[0] == FIRST_DEV_KEY
    assert w3.eth.get_balance(anvil.accounts[9].address) > 0


def test_node_listens_on_loopback(anvil: AnvilNode, w3: Web3):
    assert anvil.url == f"http://127.0.0.1:{anvil.port}"
    assert w3.eth.chain_id == 31337 == anvil.chain_id


def test_start_and_stop_with_chain_id(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="ledger.chain.devnet")

    with start_anvil(chain_id=1337) as node:
        assert Web3(Web3.HTTPProvider(node.url)).eth.chain_id == 1337
        assert node.process.poll() is None

    assert node.process.returncode is not None
    node.stop()  # a second stop does nothing
    messages = [record.getMessage() for record in caplog.records]
    assert f"anvil.started port={node.port} pid={node.pid} chain_id=1337" in messages
    assert any(message.startswith(f"anvil.stopped port={node.port} pid={node.pid}") for message in messages)


def test_start_rejects_busy_port(anvil: AnvilNode):
    with pytest.raises(AnvilError, match=f"port {anvil.port} on 127.0.0.1 is already in use"):
        start_anvil(port=anvil.port)


def test_start_reports_anvil_error():
    # An out-of-range chain id makes anvil exit at once with a usage error on stderr.
    with pytest.raises(AnvilError, match="anvil exited with code .* stderr: .*chain-id"):
        start_anvil(chain_id=2**64)


def test_state_path_keeps_chain_across_restarts(tmp_path: Path):
    state = tmp_path / "anvil-state.json"

    with start_anvil(state_path=state) as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        for _ in range(3):
            w3.provider.make_request("evm_mine", [])
        assert w3.eth.block_number == 3
    assert state.is_file()

    with start_anvil(state_path=state) as node:
        assert Web3(Web3.HTTPProvider(node.url)).eth.block_number == 3


def test_block_time_mines_without_transactions():
    with start_anvil(block_time=0.2) as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        deadline = time.monotonic() + 5
        while w3.eth.block_number < 2 and time.monotonic() < deadline:
            time.sleep(0.05)

        assert w3.eth.block_number >= 2
