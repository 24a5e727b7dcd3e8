"""Admission control: how many requests an API process runs at once.

Endpoints that are plain functions run in anyio's worker threads, and a request takes a thread
several times (its dependencies, the endpoint, the response model) while it may hold a pooled
database connection in between. With more requests under way than the pool can serve, the
threads can all end up waiting for a connection while the requests holding the connections
wait for a thread: every request then stops until the pool's 30-second timeout.

Requests beyond the limit wait here, in the event loop, holding neither a thread nor a
connection. A request uses at most two connections (its session, and for intake the batch's
own transaction), so the limit is half the pool, and the threads are as many as the pool. The
coroutine read routes use the async read pool instead, which has one connection per admitted
request (`api.app`).
"""

import asyncio
import logging

import anyio.to_thread
from prometheus_client import Gauge
from starlette.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger(__name__)

#: Connections a request may hold at once: its own session and the intake transaction.
CONNECTIONS_PER_REQUEST = 2

WAITING = Gauge("ledger_http_requests_waiting", "Requests waiting for a free slot in this process")


def admission_limit(pool_size: int) -> int:
    """Return how many requests may run at once over a pool of `pool_size` connections."""
    return max(1, pool_size // CONNECTIONS_PER_REQUEST)


class AdmissionMiddleware:
    """Run at most `limit` HTTP requests at once; later ones wait in order of arrival."""

    def __init__(self, app: ASGIApp, *, pool_size: int) -> None:
        self.app = app
        self.pool_size = pool_size
        self.limit = admission_limit(pool_size)
        self._slots: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.limit)
        WAITING.inc()
        try:
            await self._slots.acquire()
        finally:
            WAITING.dec()
        try:
            await self.app(scope, receive, send)
        finally:
            self._slots.release()

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The thread limiter belongs to the event loop, which exists from the lifespan on.
        anyio.to_thread.current_default_thread_limiter().total_tokens = self.pool_size
        logger.info("api.admission requests_at_once=%s threads=%s", self.limit, self.pool_size)
        await self.app(scope, receive, send)
