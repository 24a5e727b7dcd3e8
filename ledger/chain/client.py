"""Connecting to an EVM JSON-RPC endpoint and checking it serves the expected chain."""

import logging
from dataclasses import dataclass

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from ledger.chain.contracts import Deployment, distributor_contract, token_contract
from ledger.chain.errors import ChainIdMismatch, RpcUnavailable, classify
from ledger.config import Settings

logger = logging.getLogger(__name__)

RPC_TIMEOUT_SECONDS = 10


def connect(rpc_url: str, *, expected_chain_id: int | None = None) -> Web3:
    """Return a Web3 client for `rpc_url` after checking `eth_chainId`.

    Raises:
        RpcUnavailable: when the endpoint does not answer.
        ChainIdMismatch: when it serves another chain than `expected_chain_id`.
    """
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": RPC_TIMEOUT_SECONDS}))
    try:
        chain_id = w3.eth.chain_id
    except Exception as error:  # noqa: BLE001 - mapped to the service's own error right here
        raise classify(error) from error
    if expected_chain_id is not None and chain_id != expected_chain_id:
        raise ChainIdMismatch(
            f"the RPC endpoint serves chain id {chain_id} but {expected_chain_id} is configured: "
            "fix LEDGER_CHAIN_ID or RPC_URL"
        )
    logger.info("chain.connected chain_id=%s", chain_id)
    return w3


def load_anchorer(settings: Settings) -> LocalAccount:
    """Return the anchorer account from the environment key or the encrypted keystore file.

    Raises:
        ValueError: when neither is configured, or the keystore cannot be decrypted.
    """
    if settings.anchorer_private_key is not None:
        return Account.from_key(settings.anchorer_private_key.get_secret_value())
    if settings.anchorer_keystore:
        if settings.anchorer_keystore_password is None:
            raise ValueError("LEDGER_ANCHORER_KEYSTORE is set but LEDGER_ANCHORER_KEYSTORE_PASSWORD is not")
        with open(settings.anchorer_keystore, encoding="utf-8") as handle:
            encrypted = handle.read()
        try:
            key = Account.decrypt(encrypted, settings.anchorer_keystore_password.get_secret_value())
        except ValueError as error:
            raise ValueError(f"cannot decrypt keystore {settings.anchorer_keystore}: wrong password?") from error
        return Account.from_key(key)
    raise ValueError(
        "no anchorer key: set LEDGER_ANCHORER_PRIVATE_KEY or LEDGER_ANCHORER_KEYSTORE "
        "(with LEDGER_ANCHORER_KEYSTORE_PASSWORD)"
    )


@dataclass
class ChainContext:
    """Everything the worker and the API need to talk to the deployed contracts."""

    w3: Web3
    chain_id: int
    deployment: Deployment
    distributor: Contract
    token: Contract

    @classmethod
    def open(cls, rpc_url: str, deployment: Deployment, *, expected_chain_id: int | None = None) -> "ChainContext":
        """Connect, check the chain id against configuration and the deployment record."""
        expected = expected_chain_id if expected_chain_id is not None else deployment.chain_id
        w3 = connect(rpc_url, expected_chain_id=expected)
        if deployment.chain_id != expected:
            raise ChainIdMismatch(
                f"the deployment record is for chain {deployment.chain_id} but chain {expected} is configured"
            )
        return cls(
            w3=w3,
            chain_id=expected,
            deployment=deployment,
            distributor=distributor_contract(w3, deployment.distributor_address),
            token=token_contract(w3, deployment.token_address),
        )

    def block_timestamp(self) -> int:
        """Return the timestamp of the latest block."""
        try:
            return int(self.w3.eth.get_block("latest")["timestamp"])
        except Exception as error:  # noqa: BLE001
            raise classify(error) from error

    def head(self) -> int:
        """Return the latest block number."""
        try:
            return int(self.w3.eth.block_number)
        except Exception as error:  # noqa: BLE001
            raise classify(error) from error


__all__ = ["ChainContext", "RpcUnavailable", "connect", "load_anchorer"]
