"""Public proof endpoints: a ready-to-send claim payload, and contribution proofs."""

import uuid

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import AddressPath, ReadDbDep, StateDep, read_with_pool, require_chain
from api.documents import ProofDocument
from ledger.chain.calldata import claim_calldata
from ledger.contributors.service import normalize_address
from ledger.earnings.service import claim_proof_and_claimed_async, contribution_proof

router = APIRouter(tags=["proofs"])

NOT_FOUND = {404: {"description": "No active root, no entitlement or unknown session"}}


class ClaimPayload(BaseModel):
    """Everything a wallet needs to call `claim(account, cumulativeAmount, proof)`."""

    account: str
    epoch: int
    cumulative_amount: str
    """Decimal string of base units: the amount the proof is for."""
    claimed: str
    claimable: str
    """Amount the claim would mint now: `cumulative_amount - claimed`."""
    proof: list[str]
    root: str
    contract: str
    chain_id: int
    calldata: str
    """ABI-encoded `claim` call: send it to `contract` with value 0 from any account."""


@router.get("/claims/{address}", response_model=ClaimPayload, responses={**NOT_FOUND, 422: {"description": "Malformed address"}})
async def get_claim_payload(address: AddressPath, state: StateDep) -> ClaimPayload:
    """Return the claim payload of an address against the latest active claims root."""
    account = normalize_address(address)
    chain = require_chain(state)
    distributor = chain.distributor
    proof, claimed = await read_with_pool(
        state,
        lambda connection: claim_proof_and_claimed_async(
            connection, account, distributor=distributor.address, chain_id=chain.chain_id
        ),
    )
    calldata = claim_calldata(account, proof.cumulative_amount, list(proof.proof))
    return ClaimPayload(
        account=account,
        epoch=proof.epoch,
        cumulative_amount=str(proof.cumulative_amount),
        claimed=str(claimed),
        claimable=str(max(proof.cumulative_amount - claimed, 0)),
        proof=list(proof.proof),
        root=proof.root,
        contract=distributor.address,
        chain_id=chain.chain_id,
        calldata=calldata,
    )


@router.get("/sessions/{session_id}/proof", response_model=ProofDocument, responses={**NOT_FOUND, 422: {"description": "Malformed session id"}})
def get_contribution_proof(session_id: uuid.UUID, db: ReadDbDep, state: StateDep) -> dict:
    """Return the contribution proof of a session, in the format `ledger verify` reads."""
    chain = state.chain
    proof = contribution_proof(
        db,
        session_id,
        distributor=chain.distributor.address if chain else None,
        chain_id=chain.chain_id if chain else None,
    )
    return proof.to_dict()
