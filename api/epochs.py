"""Public epoch endpoints: roots, totals, transaction hashes and claims tree dumps."""

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker

from api.deps import AdminDep, DbDep, NowDep, ReadDbDep, StateDep
from api.documents import TreeDump
from ledger.epochs.build import CLAIMS, build_epoch, epoch_tree_dump_json
from ledger.epochs.trees import tree_record
from ledger.epochs.service import close_epoch, get_epoch
from ledger.errors import NotFound
from ledger.models import Epoch

router = APIRouter(prefix="/epochs", tags=["epochs"])


class EpochView(BaseModel):
    """An epoch; token amounts are decimal strings of base units, hashes are 0x hex."""

    number: int
    status: str
    opened_at: datetime
    closed_at: datetime | None
    emission: str
    rollover: str
    total_points: int | None
    allocated: str | None
    total_entitled: str | None
    claims_root: str | None
    contributions_root: str | None
    anchor_tx_hash: str | None
    anchor_block: int | None
    activates_at: datetime | None


class EpochPage(BaseModel):
    """Epochs, newest first."""

    items: list[EpochView]
    total: int
    limit: int
    offset: int


def _hex(value: bytes | None) -> str | None:
    return None if value is None else "0x" + value.hex()


def _amount(value: int | None) -> str | None:
    return None if value is None else str(value)


def view_of(epoch: Epoch) -> EpochView:
    """Return the API view of an epoch."""
    return EpochView(
        number=epoch.number,
        status=epoch.status.value,
        opened_at=epoch.opened_at,
        closed_at=epoch.closed_at,
        emission=str(epoch.emission),
        rollover=str(epoch.rollover),
        total_points=epoch.total_points,
        allocated=_amount(epoch.allocated),
        total_entitled=_amount(epoch.total_entitled),
        claims_root=_hex(epoch.claims_root),
        contributions_root=_hex(epoch.contributions_root),
        anchor_tx_hash=_hex(epoch.anchor_tx_hash),
        anchor_block=epoch.anchor_block,
        activates_at=epoch.activates_at,
    )


@router.get("", response_model=EpochPage)
def list_epochs(
    db: DbDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> EpochPage:
    """List epochs, newest first."""
    total = db.scalar(select(func.count()).select_from(Epoch)) or 0
    rows = db.scalars(select(Epoch).order_by(Epoch.number.desc()).limit(limit).offset(offset))
    return EpochPage(items=[view_of(row) for row in rows], total=total, limit=limit, offset=offset)


#: An epoch number in a path: epochs are numbered from 1, so 0 and below are malformed (422).
EpochNumber = Annotated[int, Path(ge=1, description="Epoch number, from 1")]

NUMBER_ERRORS = {404: {"description": "Unknown epoch"}, 422: {"description": "Malformed epoch number"}}


@router.get("/{number}", response_model=EpochView, responses=NUMBER_ERRORS)
def read_epoch(number: EpochNumber, db: DbDep) -> EpochView:
    """Return one epoch."""
    return view_of(get_epoch(db, _check_number(number)))


@router.get("/{number}/claims-tree", response_model=TreeDump, responses=NUMBER_ERRORS)
def read_claims_tree(number: EpochNumber, db: ReadDbDep, state: StateDep) -> StreamingResponse:
    """Return the epoch's claims tree in the `standard-v1` format `StandardMerkleTree.load` reads.

    The dump is streamed as it is read from storage, so a tree of a million leaves is never
    held in memory whole.
    """
    get_epoch(db, _check_number(number))
    if tree_record(db, number, CLAIMS) is None:
        raise NotFound(f"epoch {number} has no claims tree: it is open or had no entitlements", code="tree_not_found")
    return StreamingResponse(_claims_tree_json(state.factory, number), media_type="application/json")


def _claims_tree_json(factory: sessionmaker[DbSession], number: int) -> Iterator[str]:
    # The request's session is closed before the body is sent, and the leaves are read through
    # a server-side cursor, which needs a transaction: the stream has its own session.
    with factory() as db:
        yield from epoch_tree_dump_json(db, number, CLAIMS)


@router.post("/close", response_model=EpochView, responses={401: {"description": "Admin key required"}})
def close_now(db: DbDep, state: StateDep, now: NowDep, admin: AdminDep) -> EpochView:
    """Close the open epoch now and build its trees; the worker anchors it on its next tick."""
    closed = close_epoch(db, settings=state.settings, now=now, force=True)
    assert closed is not None
    return view_of(build_epoch(db, closed.number))


def _check_number(number: int) -> int:
    if not 1 <= number <= 2**31 - 1:
        raise NotFound(f"epoch {number} does not exist: epochs are numbered from 1", code="epoch_not_found")
    return number
