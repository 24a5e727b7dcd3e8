"""Gasless claims: the typed data to sign, and a relayer that sends the signed claim."""

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import DbDep, StateDep, require_chain
from ledger.chain.relayer import current_claim_nonce, load_relayer, relay_signed_claim
from ledger.chain.signed_claims import SignedClaimRequest
from ledger.contributors.service import normalize_address
from ledger.earnings.service import claim_proof
from ledger.errors import InvalidInput

router = APIRouter(tags=["proofs"])

UINT256_MAX = 2**256 - 1

#: Seconds a typed claim from GET /v1/claims/{address}/typed-data stays valid by default.
DEFAULT_DEADLINE_SECONDS = 3_600


class RelayRequest(BaseModel):
    """A claim signed with EIP-712 by the entitled account, for the relayer to send."""

    model_config = ConfigDict(extra="forbid")

    account: str = Field(description="The entitled account, which signed the claim.")
    recipient: str = Field(description="The address that receives the tokens.")
    cumulative_amount: str = Field(description="Decimal string of base units: the account's entitlement in the active root.")
    nonce: int = Field(ge=0, le=UINT256_MAX, description="The account's current nonce in the distributor, `nonces(account)`.")
    deadline: int = Field(ge=0, le=UINT256_MAX, description="Last Unix time, in seconds, at which the signature is accepted.")
    signature: str = Field(description="0x-prefixed 65-byte signature of the typed `Claim`.")


class RelayResponse(BaseModel):
    """The claim transaction the relayer sent; poll its receipt or the earnings endpoint."""

    tx_hash: str
    account: str
    recipient: str
    amount: str
    """Decimal string of base units: what the claim mints."""
    cumulative_amount: str
    relayer: str


def _parse_amount(value: str) -> int:
    if not value.isascii() or not value.isdigit() or int(value) > UINT256_MAX:
        raise InvalidInput(f"cumulative_amount must be a decimal string of base units below 2**256, got {value!r}")
    return int(value)


def _parse_signature(value: str) -> bytes:
    text = value[2:] if value.startswith("0x") else value
    try:
        signature = bytes.fromhex(text)
    except ValueError as error:
        raise InvalidInput("signature must be 0x-prefixed hex", code="invalid_signature") from error
    if len(signature) != 65:
        raise InvalidInput(f"signature must be 65 bytes, got {len(signature)}", code="invalid_signature")
    return signature


@router.post(
    "/claims/relay",
    response_model=RelayResponse,
    status_code=202,
    responses={
        404: {"description": "No active root, no entitlement in it, or no relayer key configured"},
        409: {"description": "Amount or nonce out of date, nothing to claim, or the claim would revert"},
        422: {"description": "Malformed field, wrong signer or expired signature"},
        503: {"description": "No chain configured, or the chain endpoint failed"},
    },
)
def relay_claim(body: RelayRequest, db: DbDep, state: StateDep) -> RelayResponse:
    """Send a claim signed by the entitled account; the service's relayer pays the gas."""
    chain = require_chain(state)
    request = SignedClaimRequest(
        account=normalize_address(body.account),
        recipient=normalize_address(body.recipient),
        cumulative_amount=_parse_amount(body.cumulative_amount),
        nonce=body.nonce,
        deadline=body.deadline,
    )
    signature = _parse_signature(body.signature)
    relayer = load_relayer(state.settings)
    relayed = relay_signed_claim(db, chain, relayer, request=request, signature=signature)
    return RelayResponse(
        tx_hash=relayed.tx_hash,
        account=relayed.account,
        recipient=relayed.recipient,
        amount=str(relayed.amount),
        cumulative_amount=str(relayed.cumulative_amount),
        relayer=relayed.relayer,
    )


@router.get(
    "/claims/{address}/typed-data",
    responses={404: {"description": "No active root, or no entitlement in it"}, 422: {"description": "Malformed address"}},
)
def get_claim_typed_data(
    address: str,
    db: DbDep,
    state: StateDep,
    recipient: str | None = Query(default=None, description="Receiver of the tokens (default the account)."),
    deadline: int | None = Query(default=None, ge=0, le=UINT256_MAX, description="Unix time in seconds (default one hour from now)."),
) -> dict:
    """Return the EIP-712 message to sign with `eth_signTypedData_v4` for POST /v1/claims/relay."""
    chain = require_chain(state)
    account = normalize_address(address)
    proof = claim_proof(db, account, distributor=chain.distributor.address, chain_id=chain.chain_id)
    request = SignedClaimRequest(
        account=account,
        recipient=normalize_address(recipient) if recipient else account,
        cumulative_amount=proof.cumulative_amount,
        nonce=current_claim_nonce(chain, account),
        deadline=deadline if deadline is not None else chain.block_timestamp() + DEFAULT_DEADLINE_SECONDS,
    )
    typed = request.typed_data(chain_id=chain.chain_id, distributor=chain.distributor.address)
    # uint256 values as decimal strings, as the rest of the API sends token amounts.
    typed["message"]["cumulativeAmount"] = str(proof.cumulative_amount)
    return typed
