"""Sign-in with Ethereum (EIP-4361): a one-time nonce, then a signed message for a bearer token."""

from datetime import datetime, timedelta

from typing import Annotated

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import DbDep, NowDep, StateDep, bearer_token
from ledger.auth.service import issue_nonce, revoke_token, sign_in

router = APIRouter(prefix="/auth", tags=["auth"])


class NonceResponse(BaseModel):
    """Fields a wallet needs to compose the sign-in message."""

    nonce: str
    expires_at: datetime
    domain: str
    chain_id: int | None
    statement: str = "Sign in to Contributor Ledger to review and manage your sessions."


class SignInRequest(BaseModel):
    """The EIP-4361 message text and its EIP-191 signature."""

    model_config = ConfigDict(extra="forbid")

    message: str = Field(max_length=4096)
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$")


class SignInResponse(BaseModel):
    """A bearer token for the `Authorization` header."""

    token: str
    token_type: str = "bearer"
    address: str
    expires_at: datetime


@router.get("/nonce", response_model=NonceResponse)
def get_nonce(db: DbDep, state: StateDep, now: NowDep) -> NonceResponse:
    """Issue a one-time nonce, valid for 10 minutes."""
    nonce, expires_at = issue_nonce(db, now=now)
    chain_id = state.chain.chain_id if state.chain else state.settings.chain_id
    return NonceResponse(nonce=nonce, expires_at=expires_at, domain=state.settings.auth_domain, chain_id=chain_id)


@router.post(
    "/sign-in",
    response_model=SignInResponse,
    responses={401: {"description": "Bad signature, domain, chain, nonce or validity window"}},
)
def post_sign_in(request: SignInRequest, db: DbDep, state: StateDep, now: NowDep) -> SignInResponse:
    """Verify a signed sign-in message and return a short-lived bearer token."""
    chain_id = state.chain.chain_id if state.chain else (state.settings.chain_id or 0)
    result = sign_in(
        db,
        message=request.message,
        signature=request.signature,
        domain=state.settings.auth_domain,
        chain_id=chain_id,
        token_ttl=timedelta(seconds=state.settings.auth_token_ttl_seconds),
        now=now,
    )
    return SignInResponse(token=result.token, address=result.address, expires_at=result.expires_at)


@router.post(
    "/sign-out",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={401: {"description": "Missing, unknown or expired bearer token"}},
)
def post_sign_out(db: DbDep, now: NowDep, token: Annotated[str | None, Depends(bearer_token)]) -> None:
    """End the bearer token sent in the `Authorization` header before it expires."""
    revoke_token(db, token, now=now)
