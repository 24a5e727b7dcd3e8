"""Contributor endpoints: public earnings, and pausing or resuming one's own sharing."""

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from api.deps import AddressPath, ContributorDep, DbDep, NowDep, StateDep, read_with_pool
from ledger.contributors.service import normalize_address, set_sharing, sharing_at
from ledger.earnings.service import earnings_of_async

router = APIRouter(tags=["contributors"])


class EpochEarningView(BaseModel):
    """Points and tokens of one epoch. Token amounts are decimal strings of base units."""

    epoch: int
    status: str
    points: int
    tokens: str
    cumulative_amount: str | None


class EarningsView(BaseModel):
    """Earnings of an address. Token amounts are decimal strings of base units (18 decimals)."""

    address: str
    points_balance: int
    epochs: list[EpochEarningView]
    cumulative_amount: str
    pending_amount: str
    claimed: str
    claimable: str
    active_epoch: int | None


class SharingRequest(BaseModel):
    """Pause (`false`) or resume (`true`) sharing from now on."""

    model_config = ConfigDict(extra="forbid")

    sharing: bool


class SharingView(BaseModel):
    """Sharing state of a contributor."""

    contributor: str
    sharing: bool
    effective_at: datetime


@router.get(
    "/contributors/{address}/earnings",
    response_model=EarningsView,
    responses={404: {"description": "Unknown address"}, 422: {"description": "Malformed address"}},
)
async def get_earnings(address: AddressPath, state: StateDep) -> EarningsView:
    """Return points, tokens per epoch, claimed and claimable amounts of an address."""
    account = normalize_address(address)
    earnings = await read_with_pool(state, lambda connection: earnings_of_async(connection, account))
    return EarningsView(
        address=earnings.address,
        points_balance=earnings.points_balance,
        epochs=[
            EpochEarningView(
                epoch=e.epoch,
                status=e.status,
                points=e.points,
                tokens=str(e.tokens),
                cumulative_amount=None if e.cumulative_amount is None else str(e.cumulative_amount),
            )
            for e in earnings.epochs
        ],
        cumulative_amount=str(earnings.cumulative_amount),
        pending_amount=str(earnings.pending_amount),
        claimed=str(earnings.claimed),
        claimable=str(earnings.claimable),
        active_epoch=earnings.active_epoch,
    )


@router.get("/me/sharing", response_model=SharingView, responses={401: {"description": "Not signed in"}})
def get_sharing(db: DbDep, now: NowDep, contributor: ContributorDep) -> SharingView:
    """Return whether the signed-in contributor is sharing now."""
    return SharingView(contributor=contributor, sharing=sharing_at(db, contributor=contributor, at=now), effective_at=now)


@router.put("/me/sharing", response_model=SharingView, responses={401: {"description": "Not signed in"}})
def put_sharing(request: SharingRequest, db: DbDep, now: NowDep, contributor: ContributorDep) -> SharingView:
    """Pause or resume sharing from now on; sessions that start while paused are rejected."""
    event = set_sharing(db, contributor=contributor, sharing=request.sharing, at=now)
    return SharingView(contributor=contributor, sharing=event.sharing, effective_at=event.effective_at)
