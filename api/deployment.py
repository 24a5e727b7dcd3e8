"""Public deployment record: the chain and contract addresses a wallet or dashboard talks to."""

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import StateDep, require_chain

router = APIRouter(tags=["chain"])

#: Decimals of the OwnershipToken (an 18-decimal ERC-20), so wallets can show whole tokens.
TOKEN_DECIMALS = 18


class DeploymentView(BaseModel):
    """Chain id and contract addresses of the deployment. Addresses are checksummed."""

    chain_id: int
    distributor: str
    """RewardDistributor: anchors the roots and receives claims."""
    token: str
    """OwnershipToken: the ERC-20 minted on claim."""
    token_decimals: int = TOKEN_DECIMALS
    deploy_block: int


@router.get(
    "/deployment",
    response_model=DeploymentView,
    responses={503: {"description": "The service runs without a chain (code `chain_not_configured`)"}},
)
def get_deployment(state: StateDep) -> DeploymentView:
    """Return the chain id and the addresses of the distributor and the token."""
    chain = require_chain(state)
    deployment = chain.deployment
    return DeploymentView(
        chain_id=chain.chain_id,
        distributor=deployment.distributor_address,
        token=deployment.token_address,
        deploy_block=deployment.deploy_block,
    )
