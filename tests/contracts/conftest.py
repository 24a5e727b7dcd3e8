"""Fixtures for contract tests: one anvil per session, fresh contracts per module, and a chain
snapshot per test so every test starts from the freshly deployed state."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from eth_abi import decode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError
from web3.types import TxReceipt

from ledger.chain.contracts import Deployment, deploy_contracts, distributor_contract, token_contract
from ledger.chain.devnet import AnvilNode, start_anvil

#: Tokens per epoch in the test deployments: 1,000 tokens of 18 decimals.
EMISSION_PER_EPOCH = 1_000 * 10**18

#: Challenge period of the test deployments, in seconds.
CHALLENGE_PERIOD = 3_600

#: Gas figures recorded by tests, printed at the end of the run.
GAS_REPORT: dict[str, int] = {}


@pytest.fixture(scope="session")
def anvil() -> Iterator[AnvilNode]:
    node = start_anvil()
    yield node
    node.stop()


@pytest.fixture(scope="session")
def w3(anvil: AnvilNode) -> Web3:
    return Web3(Web3.HTTPProvider(anvil.url))


@dataclass(frozen=True)
class Roles:
    """The dev accounts playing each part in the tests."""

    admin: LocalAccount
    anchorer: LocalAccount
    guardian: LocalAccount
    alice: LocalAccount
    bob: LocalAccount
    carol: LocalAccount
    outsider: LocalAccount


@pytest.fixture(scope="session")
def roles(anvil: AnvilNode) -> Roles:
    accounts = anvil.accounts
    return Roles(
        admin=accounts[0],
        anchorer=accounts[1],
        guardian=accounts[2],
        alice=accounts[3],
        bob=accounts[4],
        carol=accounts[5],
        outsider=accounts[6],
    )


@pytest.fixture(scope="module")
def deployment(w3: Web3, roles: Roles) -> Deployment:
    return deploy_contracts(
        w3,
        roles.admin,
        admin=roles.admin.address,
        anchorer=roles.anchorer.address,
        guardian=roles.guardian.address,
        emission_per_epoch=EMISSION_PER_EPOCH,
        challenge_period=CHALLENGE_PERIOD,
    )


class Chain:
    """Sends transactions the way a wallet does (estimate, sign locally, send raw) and moves time."""

    def __init__(self, w3: Web3, deployment: Deployment) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.distributor: Contract = distributor_contract(w3, deployment.distributor_address)
        self.token: Contract = token_contract(w3, deployment.token_address)
        self.emission_per_epoch = EMISSION_PER_EPOCH
        self.challenge_period = CHALLENGE_PERIOD

    def transact(self, sender: LocalAccount, call: Any) -> TxReceipt:
        """Send a contract function call from `sender` and return its receipt, which must succeed."""
        transaction = call.build_transaction(
            {
                "from": sender.address,
                "nonce": self.w3.eth.get_transaction_count(sender.address),
                "chainId": self.deployment.chain_id,
            }
        )
        signed = sender.sign_transaction(transaction)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, poll_latency=0.01)
        assert receipt["status"] == 1, f"transaction {tx_hash.to_0x_hex()} reverted"
        return receipt

    def expect_revert(self, sender: LocalAccount, call: Any, signature: str) -> tuple[Any, ...]:
        """Check that `call` from `sender` reverts with the custom error `signature`, such as
        "NothingToClaim(address,uint256,uint256)", and return the decoded error arguments."""
        with pytest.raises(ContractCustomError) as raised:
            call.build_transaction({"from": sender.address})

        data = raised.value.data
        assert isinstance(data, str), f"revert data is not hex: {data!r}"
        selector = "0x" + keccak(text=signature)[:4].hex()
        assert data[:10] == selector, f"expected {signature} ({selector}), got revert data {data}"

        argument_types = signature[signature.index("(") + 1 : -1]
        if not argument_types:
            return ()
        types = argument_types.split(",")
        values = decode(types, bytes.fromhex(data[10:]))
        pairs = zip(types, values, strict=True)
        return tuple(to_checksum_address(value) if kind == "address" else value for kind, value in pairs)

    def increase_time(self, seconds: int) -> None:
        """Move the chain clock forward and mine a block at the new time."""
        self.w3.provider.make_request("evm_increaseTime", [seconds])
        self.w3.provider.make_request("evm_mine", [])

    def latest_timestamp(self) -> int:
        return self.w3.eth.get_block("latest")["timestamp"]


@pytest.fixture
def chain(w3: Web3, deployment: Deployment) -> Iterator[Chain]:
    snapshot_id = w3.provider.make_request("evm_snapshot", [])["result"]
    yield Chain(w3, deployment)
    reverted = w3.provider.make_request("evm_revert", [snapshot_id])["result"]
    assert reverted, f"evm_revert to snapshot {snapshot_id} failed"


@pytest.fixture(scope="session")
def gas_report() -> dict[str, int]:
    """Gas figures by name; tests add to it and the run prints them at the end."""
    return GAS_REPORT


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not GAS_REPORT:
        return
    terminalreporter.section("contract gas (receipt gasUsed on anvil)")
    for name, gas in GAS_REPORT.items():
        terminalreporter.write_line(f"{name:<55} {gas:>9,}")
