"""Chain errors, and the one place where web3 and JSON-RPC failures are mapped to them.

    ChainError
    ├── RpcUnavailable        the node did not answer (retry)
    │   ├── RpcTimeout        no answer within the timeout
    │   └── RpcConnectionRefused  nothing listens at the endpoint, or the connection dropped
    ├── ChainIdMismatch       the endpoint serves another chain than configured (stop)
    ├── AlreadyKnown          the node already holds this exact transaction (nothing to do)
    ├── NonceTooLow           the nonce was used by another transaction (re-read state)
    ├── ReplacementUnderpriced  a replacement did not raise fees enough (raise them more)
    ├── InsufficientFunds     the signer cannot pay for gas (alert the operator)
    └── TransactionReverted   execution reverted; `reason` holds the decoded error if known
"""

import requests
from web3.exceptions import ContractCustomError, ContractLogicError, TimeExhausted, Web3RPCError


class ChainError(RuntimeError):
    """Base of every chain failure the service handles."""

    retryable = False


class RpcUnavailable(ChainError):
    """The JSON-RPC endpoint timed out or refused the connection."""

    retryable = True


class RpcTimeout(RpcUnavailable):
    """The JSON-RPC endpoint did not answer within the timeout."""


class RpcConnectionRefused(RpcUnavailable):
    """The JSON-RPC endpoint refused or dropped the connection."""


class ChainIdMismatch(ChainError):
    """The endpoint's `eth_chainId` differs from the configured chain id."""


class AlreadyKnown(ChainError):
    """The node already holds this exact signed transaction in its pool."""

    retryable = True


class NonceTooLow(ChainError):
    """The node has seen a transaction with this nonce already."""

    retryable = True


class ReplacementUnderpriced(ChainError):
    """A same-nonce replacement did not raise both fees by the node's minimum."""

    retryable = True


class InsufficientFunds(ChainError):
    """The sender's balance cannot cover gas times fee plus value."""


class TransactionReverted(ChainError):
    """Execution reverted."""

    def __init__(self, message: str, *, data: str | None = None) -> None:
        super().__init__(message)
        self.data = data


def classify(error: Exception) -> ChainError:
    """Return the service's error for a web3, requests or RPC exception."""
    if isinstance(error, ChainError):
        return error
    # requests.ConnectTimeout is both a Timeout and a ConnectionError: test for timeouts first.
    if isinstance(error, (requests.Timeout, TimeExhausted, TimeoutError)):
        return RpcTimeout(f"RPC endpoint timed out: {error}")
    if isinstance(error, (requests.ConnectionError, ConnectionError)):
        return RpcConnectionRefused(f"RPC endpoint unreachable: {error}")
    if isinstance(error, ContractCustomError):
        return TransactionReverted(f"execution reverted with custom error {error.data}", data=str(error.data))
    if isinstance(error, ContractLogicError):
        return TransactionReverted(f"execution reverted: {error}", data=str(error.data) if error.data else None)
    if isinstance(error, Web3RPCError):
        message = str(error).lower()
        if "already known" in message or "already imported" in message:
            return AlreadyKnown(str(error))
        if "nonce too low" in message:
            return NonceTooLow(str(error))
        if "underpriced" in message:
            return ReplacementUnderpriced(str(error))
        if "insufficient funds" in message:
            return InsufficientFunds(str(error))
        if "revert" in message:
            return TransactionReverted(str(error))
    return ChainError(f"{type(error).__name__}: {error}")
