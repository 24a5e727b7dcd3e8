"""Load the committed contract artifacts, deploy the contracts and save the deployment record.

The artifacts in contracts/artifacts/ come from `node contracts/build.mjs`. A deployment is two
transactions from one account: the OwnershipToken first, with the RewardDistributor's future
CREATE address as its immutable minter, then the RewardDistributor at exactly that address.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils import is_address, to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError, TimeExhausted
from web3.types import TxReceipt
from web3.utils.address import get_create_address

from ledger import PROJECT_ROOT

logger = logging.getLogger(__name__)

#: Folder of the committed artifacts written by contracts/build.mjs.
ARTIFACTS_DIR = PROJECT_ROOT / "contracts" / "artifacts"

#: Version of the JSON layout written by `Deployment.to_json`; `from_json` rejects any other.
DEPLOYMENT_FORMAT = 1

#: Seconds to wait for each deployment receipt.
DEFAULT_RECEIPT_TIMEOUT = 120.0

#: Receipt polling interval in seconds. web3's default of 0.1 s adds latency against anvil's automine.
RECEIPT_POLL_LATENCY = 0.01


class DeploymentError(RuntimeError):
    """A deployment transaction failed or the deployed contracts are not wired as expected."""


@cache
def load_artifact(contract_name: str) -> dict[str, Any]:
    """Return the artifact of `contract_name` ("OwnershipToken" or "RewardDistributor").

    The artifact contains `contractName`, `sourceName`, `compiler`, `abi`, `bytecode` and
    `deployedBytecode`.
    """
    path = ARTIFACTS_DIR / f"{contract_name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"contract artifact not found: {path}; run `node contracts/build.mjs`")
    return json.loads(path.read_text(encoding="utf-8"))


def token_contract(w3: Web3, address: str) -> Contract:
    """Return a web3 contract object for the OwnershipToken at `address`."""
    return w3.eth.contract(address=to_checksum_address(address), abi=load_artifact("OwnershipToken")["abi"])


def distributor_contract(w3: Web3, address: str) -> Contract:
    """Return a web3 contract object for the RewardDistributor at `address`."""
    return w3.eth.contract(address=to_checksum_address(address), abi=load_artifact("RewardDistributor")["abi"])


@dataclass(frozen=True)
class Deployment:
    """Record of a deployment: chain, contract addresses, first block and transaction hashes.

    Addresses are checksummed; transaction hashes are 0x-prefixed hex.
    """

    chain_id: int
    token_address: ChecksumAddress
    distributor_address: ChecksumAddress
    #: Block of the first deployment transaction: the claim indexer starts reading events here.
    deploy_block: int
    token_tx_hash: str
    distributor_tx_hash: str

    def to_json(self) -> str:
        """Serialize the record as JSON text with a format version and a trailing newline."""
        return json.dumps({"format": DEPLOYMENT_FORMAT, **asdict(self)}, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Deployment:
        """Parse a record written by `to_json`. Raises ValueError on another format or bad fields."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("deployment record must be a JSON object")
        if data.get("format") != DEPLOYMENT_FORMAT:
            raise ValueError(
                f"deployment record format {data.get('format')!r} is not supported; expected {DEPLOYMENT_FORMAT}"
            )

        missing = {field.name for field in fields(cls)} - data.keys()
        if missing:
            raise ValueError(f"deployment record is missing {', '.join(sorted(missing))}")
        for key in ("token_address", "distributor_address"):
            if not is_address(data[key]):
                raise ValueError(f"deployment record has an invalid {key}: {data[key]!r}")
        for key in ("chain_id", "deploy_block"):
            if not isinstance(data[key], int) or data[key] < 0:
                raise ValueError(f"deployment record has an invalid {key}: {data[key]!r}")

        return cls(
            chain_id=data["chain_id"],
            token_address=to_checksum_address(data["token_address"]),
            distributor_address=to_checksum_address(data["distributor_address"]),
            deploy_block=data["deploy_block"],
            token_tx_hash=data["token_tx_hash"],
            distributor_tx_hash=data["distributor_tx_hash"],
        )

    def save(self, path: str | Path) -> None:
        """Write the record to `path` as JSON."""
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Deployment:
        """Read a record saved by `save`."""
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


def deploy_contracts(
    w3: Web3,
    deployer: LocalAccount,
    *,
    admin: str,
    anchorer: str,
    guardian: str,
    emission_per_epoch: int,
    challenge_period: int,
    receipt_timeout: float = DEFAULT_RECEIPT_TIMEOUT,
) -> Deployment:
    """Deploy the OwnershipToken and the RewardDistributor, signed locally by `deployer`.

    `emission_per_epoch` is in token base units, `challenge_period` in seconds. The deployer must
    send no other transaction meanwhile: the token's minter is computed in advance as the CREATE
    address of the deployer's transaction after the token's. Raises ValueError on an invalid argument and
    DeploymentError when a transaction reverts or the token's minter is not the distributor.
    """
    for name, address in (("admin", admin), ("anchorer", anchorer), ("guardian", guardian)):
        if not is_address(address) or int(address, 16) == 0:
            raise ValueError(f"{name} must be a non-zero address, got {address!r}")
    if emission_per_epoch <= 0:
        raise ValueError(f"emission_per_epoch must be positive, got {emission_per_epoch}")
    if not 0 <= challenge_period < 2**64:
        raise ValueError(f"challenge_period must be between 0 and 2**64 - 1 seconds, got {challenge_period}")

    chain_id = w3.eth.chain_id
    nonce = w3.eth.get_transaction_count(deployer.address, "pending")
    expected_distributor = get_create_address(deployer.address, nonce + 1)

    token_factory = w3.eth.contract(
        abi=load_artifact("OwnershipToken")["abi"], bytecode=load_artifact("OwnershipToken")["bytecode"]
    )
    token_receipt = _send_and_wait(
        w3,
        deployer,
        token_factory.constructor(expected_distributor),
        nonce=nonce,
        chain_id=chain_id,
        label="OwnershipToken",
        timeout=receipt_timeout,
    )
    token_address = to_checksum_address(token_receipt["contractAddress"])

    distributor_factory = w3.eth.contract(
        abi=load_artifact("RewardDistributor")["abi"], bytecode=load_artifact("RewardDistributor")["bytecode"]
    )
    distributor_receipt = _send_and_wait(
        w3,
        deployer,
        distributor_factory.constructor(
            token_address,
            to_checksum_address(admin),
            to_checksum_address(anchorer),
            to_checksum_address(guardian),
            emission_per_epoch,
            challenge_period,
        ),
        nonce=nonce + 1,
        chain_id=chain_id,
        label="RewardDistributor",
        timeout=receipt_timeout,
    )
    distributor_address = to_checksum_address(distributor_receipt["contractAddress"])

    minter = token_contract(w3, token_address).functions.minter().call()
    if distributor_address != expected_distributor or minter != distributor_address:
        raise DeploymentError(
            f"token {token_address} has minter {minter}, but the distributor was deployed at "
            f"{distributor_address}; did {deployer.address} send another transaction during the deployment?"
        )

    deployment = Deployment(
        chain_id=chain_id,
        token_address=token_address,
        distributor_address=distributor_address,
        deploy_block=token_receipt["blockNumber"],
        token_tx_hash=token_receipt["transactionHash"].to_0x_hex(),
        distributor_tx_hash=distributor_receipt["transactionHash"].to_0x_hex(),
    )
    logger.info(
        "contracts.deployed chain_id=%d token=%s distributor=%s block=%d",
        chain_id,
        token_address,
        distributor_address,
        deployment.deploy_block,
    )
    return deployment


def _send_and_wait(
    w3: Web3,
    sender: LocalAccount,
    constructor: Any,
    *,
    nonce: int,
    chain_id: int,
    label: str,
    timeout: float,
) -> TxReceipt:
    """Sign a contract creation locally, send it raw and return its successful receipt."""
    try:
        transaction = constructor.build_transaction({"from": sender.address, "nonce": nonce, "chainId": chain_id})
    except ContractLogicError as error:
        raise DeploymentError(f"{label} deployment would revert ({error}); nothing was sent") from error
    signed = sender.sign_transaction(transaction)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    try:
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout, poll_latency=RECEIPT_POLL_LATENCY)
    except TimeExhausted as error:
        message = f"{label} deployment transaction {tx_hash.to_0x_hex()} not mined within {timeout} s"
        raise DeploymentError(message) from error
    if receipt["status"] != 1:
        raise DeploymentError(f"{label} deployment transaction {tx_hash.to_0x_hex()} reverted")
    logger.info("contracts.tx.mined contract=%s tx_hash=%s gas_used=%d", label, tx_hash.to_0x_hex(), receipt["gasUsed"])
    return receipt
