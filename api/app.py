"""Application factory: routers under /v1, JSON errors, request ids and metrics."""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker

from api import auth, claims, contributors, deployment, epochs, health, relay, sessions
from api.admission import AdmissionMiddleware, admission_limit
from api.deps import AppState
from api.errors import install_error_handlers
from api.metrics import RequestContextMiddleware
from api.ratelimit import PublicRateLimitMiddleware, RateLimit, document_rate_limits
from ledger import __version__
from ledger.chain.client import ChainContext
from ledger.config import Settings
from ledger.db import read_only_factory, read_pool

logger = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent / "web"

#: Headers of the contributor page: it loads scripts and styles from this origin only, calls
#: only this origin's API (the wallet extension reaches the chain) and sends no referrer.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def create_app(
    settings: Settings,
    factory: sessionmaker[DbSession],
    chain: ChainContext | None,
    *,
    public_rate_limit: RateLimit | None = None,
) -> FastAPI:
    """Build the API over an existing session factory and, if configured, a chain connection.

    `public_rate_limit` applies per client address to the routes that need no credentials. Without
    it, the limit comes from the settings. While the app runs, its lifespan keeps an async pool
    of autocommit connections to the factory's database for the public read routes.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The modules loaded at start (web3, eth-account, SQLAlchemy, pydantic models) are
        # never freed. Left to the collector, every full collection walked them all: about
        # 100 ms every few seconds, the p99 of the read routes. Frozen, it takes 1 to 3 ms.
        gc.collect()
        gc.freeze()
        pool = read_pool(factory, size=admission_limit(settings.database_pool_size))
        if pool is None:
            yield
            return
        await pool.open(wait=False)
        app.state.ledger.read_pool = pool
        try:
            yield
        finally:
            app.state.ledger.read_pool = None
            await pool.close()

    app = FastAPI(
        lifespan=lifespan,
        title="Contributor Ledger",
        version=__version__,
        description=(
            "Scores contributed browsing sessions, keeps points in PostgreSQL and settles "
            "ownership tokens through Merkle roots anchored on an EVM chain. Token amounts are "
            "decimal strings of base units (18 decimals)."
        ),
    )
    app.state.ledger = AppState(settings=settings, factory=factory, read_factory=read_only_factory(factory), chain=chain)
    install_error_handlers(app)
    # Starlette runs the middleware added last first: the request context, the rate limits,
    # then admission, so a rate-limited request is rejected without waiting for a slot.
    if public_rate_limit is None:
        public_rate_limit = RateLimit(
            per_minute=settings.public_rate_limit_per_minute, burst=settings.public_rate_limit_burst
        )
    app.add_middleware(AdmissionMiddleware, pool_size=settings.database_pool_size)
    app.add_middleware(PublicRateLimitMiddleware, limit=public_rate_limit)
    app.add_middleware(RequestContextMiddleware)

    v1 = APIRouter(prefix="/v1")
    for module in (sessions, auth, contributors, claims, epochs, deployment, relay):
        v1.include_router(module.router)
    app.include_router(v1)
    app.include_router(health.router)
    document_rate_limits(app, public_rate_limit)

    if (WEB_DIR / "index.html").exists():

        @app.get("/", include_in_schema=False)
        def _index() -> FileResponse:
            return FileResponse(WEB_DIR / "index.html", headers=PAGE_HEADERS)

        app.mount("/web", StaticFiles(directory=WEB_DIR), name="web")

    return app
