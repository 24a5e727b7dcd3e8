"""Request dependencies: the database session, settings, the chain and credentials."""

import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, TypeVar

import psycopg
from fastapi import Depends, Header, Path, Request
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker

from ledger.auth.keys import Scope
from ledger.auth.service import authenticate_api_key, authenticate_token
from ledger.chain.client import ChainContext
from ledger.config import Settings
from ledger.errors import Unavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class AppState:
    """Objects shared by all requests, created once when the app starts."""

    settings: Settings
    factory: sessionmaker[DbSession]
    read_factory: sessionmaker[DbSession]
    """Autocommit sessions for routes that only read (see `ledger.db.read_only_factory`)."""
    chain: ChainContext | None
    read_pool: AsyncConnectionPool | None = None
    """Autocommit connections for the coroutine read routes, open while the app runs."""


async def get_state(request: Request) -> AppState:
    """Return the application state set by `create_app`.

    A coroutine, so FastAPI runs it on the event loop instead of in a worker thread.
    """
    return request.app.state.ledger


def require_chain(state: AppState) -> ChainContext:
    """Return the chain connection, or raise a 503 that explains how to configure one.

    Raises:
        Unavailable: with code `chain_not_configured` when the service runs without a chain.
    """
    if state.chain is None:
        raise Unavailable(
            "the service has no chain configured: set RPC_URL and LEDGER_DEPLOYMENT_FILE", code="chain_not_configured"
        )
    return state.chain


def get_db(state: Annotated[AppState, Depends(get_state)]) -> Iterator[DbSession]:
    """Yield a session; commit when the endpoint returns, roll back when it raises."""
    with state.factory() as db:
        try:
            yield db
            db.commit()
        except BaseException:
            db.rollback()
            raise


def get_read_db(state: Annotated[AppState, Depends(get_state)]) -> Iterator[DbSession]:
    """Yield an autocommit session that cannot flush, for routes that only read."""
    with state.read_factory() as db:
        yield db


async def read_with_pool(state: AppState, read: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Run `read` on a connection of the async read pool, once more if the connection was lost.

    Pooled connections are not pinged. When the server has dropped them, the first read fails,
    the pool checks its idle connections and replaces the broken ones, and the read runs again.

    Raises:
        Unavailable: while the app is starting or stopping and the pool is closed.
    """
    pool = state.read_pool
    if pool is None:
        raise Unavailable("the service is starting or stopping: retry")
    try:
        async with pool.connection() as connection:
            return await read(connection)
    except psycopg.OperationalError as error:
        logger.warning("api.read_pool.connection_lost error_type=%s", type(error).__name__)
        await pool.check()
    async with pool.connection() as connection:
        return await read(connection)


def utc_now() -> datetime:
    """Return the current time; a dependency so tests can pin it."""
    return datetime.now(tz=UTC)


StateDep = Annotated[AppState, Depends(get_state)]
#: An address path parameter. The pattern is documented for clients, and the service rejects a
#: bad address or checksum with its own error code.
AddressPath = Annotated[
    str,
    Path(
        json_schema_extra={"pattern": r"^0x[0-9a-fA-F]{40}$"},
        examples=["0x52908400098527886E0F7030069857D2E4169EE7"],
    ),
]
DbDep = Annotated[DbSession, Depends(get_db, scope="function")]
#: A session for public routes that only read. Each statement runs on its own, with no transaction
#: around it, so a route reads either with one statement or only rows that no longer change.
ReadDbDep = Annotated[DbSession, Depends(get_read_db, scope="function")]
NowDep = Annotated[datetime, Depends(utc_now)]


def require_collector(db: DbDep, x_api_key: Annotated[str | None, Header()] = None) -> str:
    """Authenticate a collector by its API key; return the key id."""
    return authenticate_api_key(db, x_api_key, scope=Scope.sessions_write).key_id


def require_admin(db: DbDep, x_api_key: Annotated[str | None, Header()] = None) -> str:
    """Authenticate an operator by an admin API key; return the key id."""
    return authenticate_api_key(db, x_api_key, scope=Scope.admin).key_id


def bearer_token(authorization: Annotated[str | None, Header()] = None) -> str | None:
    """Return the token of an `Authorization: Bearer <token>` header, or None without one."""
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


def require_contributor(db: DbDep, now: NowDep, token: Annotated[str | None, Depends(bearer_token)]) -> str:
    """Authenticate a contributor by the bearer token from sign-in; return their address."""
    return authenticate_token(db, token, now=now)


CollectorDep = Annotated[str, Depends(require_collector)]
AdminDep = Annotated[str, Depends(require_admin)]
ContributorDep = Annotated[str, Depends(require_contributor)]
