"""Admission control: more concurrent requests than pooled connections never stall the API."""

import asyncio
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx2
import pytest
import uvicorn
from eth_account import Account
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from api.admission import AdmissionMiddleware, admission_limit
from api.app import create_app
from api.ratelimit import RateLimit
from ledger.auth.keys import Scope
from ledger.auth.service import create_api_key
from ledger.db import unit_of_work
from ledger.epochs.service import ensure_open_epoch
from ledger.intake.service import submit_sessions
from tests.conftest import migrated_database
from tests.ledger.factories import submission

POOL_SIZE = 4

#: More clients than anyio's default of 40 threads plus the pool's connections.
CLIENTS = 64


@pytest.mark.parametrize(("pool_size", "limit"), [(1, 1), (2, 1), (4, 2), (16, 8), (17, 8)])
def test_limit_is_half_the_pool(pool_size, limit):
    assert admission_limit(pool_size) == limit


def test_requests_beyond_the_limit_wait():
    running = 0
    max_running = 0

    async def endpoint(scope, receive, send):
        nonlocal running, max_running
        running += 1
        max_running = max(max_running, running)
        await asyncio.sleep(0.01)
        running -= 1

    middleware = AdmissionMiddleware(endpoint, pool_size=6)

    async def main():
        await asyncio.gather(*(middleware({"type": "http"}, None, None) for _ in range(20)))

    asyncio.run(main())

    assert max_running == 3


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_small_pool_with_many_clients(settings):
    # Without admission control, requests holding the pool's connections waited for a worker
    # thread to serialize their responses while every thread waited for a connection.
    with migrated_database("ledger_admission") as url:
        engine = create_engine(url, pool_size=POOL_SIZE, max_overflow=0, pool_timeout=10)
        factory = sessionmaker(engine, expire_on_commit=False)
        now = datetime.now(tz=UTC)
        contributors = [Account.create().address for _ in range(20)]
        with unit_of_work(factory) as db:
            ensure_open_epoch(db, settings=settings, now=now - timedelta(hours=3))
            submit_sessions(db, [submission(c, now - timedelta(hours=2)) for c in contributors], settings=settings, now=now)
            create_api_key(db, name="admission test", scope=Scope.sessions_write)

        app = create_app(
            settings.model_copy(update={"database_pool_size": POOL_SIZE}),
            factory,
            None,
            public_rate_limit=RateLimit(per_minute=600_000, burst=100_000),
        )
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
        thread = threading.Thread(target=server.run, name="uvicorn-admission-test", daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 10
            while not server.started and time.monotonic() < deadline:
                time.sleep(0.05)
            assert server.started

            def client(index: int) -> list[int]:
                with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                    return [
                        http.get(f"/v1/contributors/{contributors[(index + n) % len(contributors)]}/earnings").status_code
                        for n in range(8)
                    ]

            with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
                statuses = [status for result in pool.map(client, range(CLIENTS)) for status in result]
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            engine.dispose()

    assert statuses == [200] * (CLIENTS * 8)
