"""Relaying signed claims: the service pays the gas for a claim an account signed (EIP-712).

The request is checked against the database and the chain before anything is signed, so a
claim that would revert costs the relayer nothing. The amount must be the account's entitlement
in the active claims root and the signature must recover to the account. The nonce must be the
contract's current one, and the deadline must not have passed. The relayer's own transaction
nonce comes from the per-signer allocator and is committed with the request.
"""

import logging
from dataclasses import dataclass

from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy.orm import Session as DbSession

from ledger.chain.client import ChainContext
from ledger.chain.errors import AlreadyKnown, TransactionReverted, classify
from ledger.chain.nonces import allocate_nonce
from ledger.chain.signed_claims import SignedClaimRequest
from ledger.config import Settings
from ledger.earnings.service import claim_proof
from ledger.errors import Conflict, InvalidInput, NotFound

logger = logging.getLogger(__name__)

#: Extra gas on top of the estimate, in percent, for state that changes before inclusion.
GAS_LIMIT_MARGIN_PERCENT = 20


@dataclass(frozen=True)
class RelayedClaim:
    """A signed claim the relayer sent. Amounts in base units."""

    tx_hash: str
    account: str
    recipient: str
    amount: int
    cumulative_amount: int
    relayer: str
    relayer_nonce: int


def load_relayer(settings: Settings) -> LocalAccount:
    """Return the relayer account.

    Raises:
        NotFound: when LEDGER_RELAYER_PRIVATE_KEY is not set. A deployment without a relayer
            lacks the relay route for good, so the error is not a retryable 503.
    """
    if settings.relayer_private_key is None:
        raise NotFound(
            "this service relays no claims: set LEDGER_RELAYER_PRIVATE_KEY, or send the claim yourself",
            code="relayer_not_configured",
        )
    return Account.from_key(settings.relayer_private_key.get_secret_value())


def current_claim_nonce(chain: ChainContext, account: str) -> int:
    """Return the nonce that `account`'s next signed claim must use."""
    try:
        return int(chain.distributor.functions.nonces(account).call())
    except Exception as error:  # noqa: BLE001 - mapped to the service's own error right here
        raise classify(error) from error


def relay_signed_claim(
    db: DbSession, chain: ChainContext, relayer: LocalAccount, *, request: SignedClaimRequest, signature: bytes
) -> RelayedClaim:
    """Check a signed claim, then sign and send `claimWithSig` from `relayer`.

    Raises:
        NotFound: when no claims root is active or the account has no entitlement in it.
        Conflict: when the amount is not the active entitlement, the nonce is not the contract's,
            nothing is left to claim, or the contract would revert for another reason.
        InvalidInput: when the signature is malformed, made by another key, or past its deadline.
        ChainError: when the node fails or rejects the transaction.
    """
    distributor = chain.distributor
    proof = claim_proof(db, request.account, distributor=distributor.address, chain_id=chain.chain_id)
    if request.cumulative_amount != proof.cumulative_amount:
        raise Conflict(
            f"cumulative_amount {request.cumulative_amount} is not the entitlement of {request.account} in the "
            f"active epoch {proof.epoch} ({proof.cumulative_amount}): sign the amount from GET /v1/claims/{request.account}",
            code="amount_mismatch",
            expected=str(proof.cumulative_amount),
        )
    if request.deadline < chain.block_timestamp():
        raise InvalidInput(f"the signature expired at Unix time {request.deadline}: sign again", code="signature_expired")

    try:
        signer = request.recover_signer(signature, chain_id=chain.chain_id, distributor=distributor.address)
    except ValueError as error:
        raise InvalidInput(f"signature is malformed: {error}", code="invalid_signature") from error
    if signer != request.account:
        raise InvalidInput(
            f"the signature was made by {signer}, not by {request.account}: sign with the entitled account",
            code="invalid_signature",
        )

    try:
        nonce = int(distributor.functions.nonces(request.account).call())
        already_claimed = int(distributor.functions.claimed(request.account).call())
    except Exception as error:  # noqa: BLE001 - mapped to the service's own error right here
        raise classify(error) from error
    if request.nonce != nonce:
        raise Conflict(
            f"nonce {request.nonce} is not the current nonce {nonce} of {request.account}: sign again with {nonce}",
            code="nonce_mismatch",
            expected=nonce,
        )
    if request.cumulative_amount <= already_claimed:
        raise Conflict(
            f"{request.account} already claimed {already_claimed} of {request.cumulative_amount}: nothing to claim",
            code="nothing_to_claim",
        )

    call = distributor.functions.claimWithSig(
        request.account,
        request.recipient,
        request.cumulative_amount,
        request.nonce,
        request.deadline,
        [bytes.fromhex(node[2:]) for node in proof.proof],
        signature,
    )
    try:
        gas = call.estimate_gas({"from": relayer.address})
        base_fee = int(chain.w3.eth.get_block("latest")["baseFeePerGas"])
        priority_fee = int(chain.w3.eth.max_priority_fee)
    except Exception as error:  # noqa: BLE001
        mapped = classify(error)
        if isinstance(mapped, TransactionReverted):
            logger.warning("relay.claim.would_revert account=%s error=%s", request.account, mapped)
            raise Conflict(f"the claim would revert: {mapped}", code="claim_would_revert", data=mapped.data) from error
        raise mapped from error

    relayer_nonce = allocate_nonce(db, chain, relayer.address)
    transaction = call.build_transaction(
        {
            "from": relayer.address,
            "nonce": relayer_nonce,
            "chainId": chain.chain_id,
            "gas": gas * (100 + GAS_LIMIT_MARGIN_PERCENT) // 100,
            "maxFeePerGas": 2 * base_fee + priority_fee,
            "maxPriorityFeePerGas": priority_fee,
        }
    )
    signed = relayer.sign_transaction(transaction)
    tx_hash = "0x" + bytes(signed.hash).hex()
    try:
        chain.w3.eth.send_raw_transaction(signed.raw_transaction)
    except Exception as error:  # noqa: BLE001
        mapped = classify(error)
        if not isinstance(mapped, AlreadyKnown):
            # The request's transaction rolls back, which gives the nonce back to the allocator.
            logger.warning(
                "relay.claim.send_failed account=%s tx_hash=%s nonce=%s error_type=%s error=%s",
                request.account,
                tx_hash,
                relayer_nonce,
                type(mapped).__name__,
                mapped,
            )
            raise mapped from error

    amount = request.cumulative_amount - already_claimed
    logger.info(
        "relay.claim.sent account=%s recipient=%s amount=%s tx_hash=%s nonce=%s",
        request.account,
        request.recipient,
        amount,
        tx_hash,
        relayer_nonce,
    )
    return RelayedClaim(
        tx_hash=tx_hash,
        account=request.account,
        recipient=request.recipient,
        amount=amount,
        cumulative_amount=request.cumulative_amount,
        relayer=relayer.address,
        relayer_nonce=relayer_nonce,
    )
