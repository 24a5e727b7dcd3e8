"""A live stack for tests that act as real clients: PostgreSQL, anvil with the contracts deployed,
the API under uvicorn on 127.0.0.1 and the worker, driven one tick at a time by the tests.

The stack is shared by the tests of this folder. Each test uses contributors of its own, so
tests only share the epochs: each one that needs an active root anchors the open epoch itself.
"""

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import pytest
import uvicorn
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker
from web3 import Web3

from api.app import create_app
from api.ratelimit import RateLimit
from ledger import PROJECT_ROOT
from ledger.auth.keys import Scope
from ledger.auth.service import create_api_key
from ledger.chain.client import ChainContext, connect
from ledger.chain.contracts import deploy_contracts
from ledger.chain.devnet import start_anvil
from ledger.config import Settings
from ledger.db import unit_of_work
from ledger.epochs.service import ensure_open_epoch
from ledger.models import Epoch, EpochStatus
from ledger.worker import Worker
from tests.conftest import migrated_database
from tests.ledger.factories import session_payload
from tests.merkle.conftest import run_oz  # noqa: F401 - the Merkle cross-check runner, for API output

ARTIFACTS_DIR = PROJECT_ROOT / "test-artifacts"
CAST_BINARY = PROJECT_ROOT / "node_modules" / "@foundry-rs" / "cast-linux-amd64" / "bin" / "cast"
EMISSION_PER_EPOCH = 1_000 * 10**18
GAS_MONEY_WEI = 10**18
#: Worker ticks allowed for an epoch to go from open to active; each tick advances at least one
#: step (close and build, submit the anchor, confirm it, activate it) on an auto-mining anvil.
MAX_TICKS_TO_ACTIVE = 40


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LiveStack:
    """Handles on the running stack, and the steps tests share."""

    base_url: str
    rpc_url: str
    settings: Settings
    factory: sessionmaker[DbSession]
    chain: ChainContext
    w3: Web3
    worker: Worker
    funder: LocalAccount
    collector_key: str
    deployment_file: Path
    http: httpx2.Client

    def new_contributor(self, *, gas_money: bool = True) -> LocalAccount:
        """Return a fresh key, funded with 1 ETH for gas when `gas_money` is set."""
        account = Account.create()
        if gas_money:
            transaction = {
                "to": account.address,
                "value": GAS_MONEY_WEI,
                "gas": 21_000,
                "maxFeePerGas": 2 * int(self.w3.eth.get_block("latest")["baseFeePerGas"]) + 10**9,
                "maxPriorityFeePerGas": 10**9,
                "nonce": self.w3.eth.get_transaction_count(self.funder.address, "pending"),
                "chainId": self.chain.chain_id,
            }
            signed = self.funder.sign_transaction(transaction)
            receipt = self.w3.eth.wait_for_transaction_receipt(self.w3.eth.send_raw_transaction(signed.raw_transaction))
            assert receipt["status"] == 1
        return account

    def submit_sessions(self, contributor: str, count: int, **overrides) -> list[dict]:  # type: ignore[no-untyped-def]
        """Submit `count` valid 10-minute sessions of `contributor` as the collector."""
        start = datetime.now(tz=UTC) - timedelta(hours=2)
        payloads = [session_payload(contributor, start - timedelta(minutes=15 * index), **overrides) for index in range(count)]
        response = self.http.post(
            "/v1/sessions/batch", json={"sessions": payloads}, headers={"X-API-Key": self.collector_key}
        )
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        assert [result["status"] for result in results] == ["scored"] * count, results
        return payloads

    def anchor_open_epoch(self) -> int:
        """Close the open epoch and tick the worker until its claims root is active on chain."""
        with self.factory() as db:
            number = db.scalar(select(Epoch.number).where(Epoch.status == EpochStatus.OPEN))
        assert number is not None, "no open epoch to close"
        self.worker.tick(force_close=True)
        for _ in range(MAX_TICKS_TO_ACTIVE):
            with self.factory() as db:
                status = db.scalar(select(Epoch.status).where(Epoch.number == number))
            if status == EpochStatus.ACTIVE:
                return number
            self.worker.tick()
        raise AssertionError(f"epoch {number} is {status} after {MAX_TICKS_TO_ACTIVE} worker ticks, expected active")

    def index_claims(self) -> None:
        """Run one worker tick, which indexes `Claimed` events up to the head."""
        self.worker.tick()


@pytest.fixture(scope="session")
def live_stack(tmp_path_factory) -> Iterator[LiveStack]:  # type: ignore[no-untyped-def]
    workdir = tmp_path_factory.mktemp("live-stack")
    with migrated_database("ledger_web") as url, start_anvil() as node:
        engine = create_engine(url)
        factory = sessionmaker(engine, expire_on_commit=False)
        w3 = connect(node.url, expected_chain_id=node.chain_id)
        anchorer, funder = node.accounts[0], node.accounts[1]
        deployment = deploy_contracts(
            w3,
            anchorer,
            admin=anchorer.address,
            anchorer=anchorer.address,
            guardian=anchorer.address,
            emission_per_epoch=EMISSION_PER_EPOCH,
            challenge_period=0,
        )
        deployment_file = workdir / "deployment.json"
        deployment.save(deployment_file)

        port = _free_port()
        settings = Settings(
            _env_file=None,
            environment="test",
            database_url=url,
            rpc_url=node.url,
            deployment_file=str(deployment_file),
            chain_id=deployment.chain_id,
            emission_per_epoch=EMISSION_PER_EPOCH,
            challenge_period_seconds=0,
            epoch_duration_seconds=86_400,
            rate_limit_sessions_per_hour=1_000,
            auth_domain=f"127.0.0.1:{port}",
        )
        chain = ChainContext.open(node.url, deployment)
        with unit_of_work(factory) as db:
            ensure_open_epoch(db, settings=settings, now=datetime.now(tz=UTC))
            collector_key = create_api_key(db, name="web test collector", scope=Scope.sessions_write)

        # The tests share one client address, and rate limits have their own tests in tests/api.
        app = create_app(settings, factory, chain, public_rate_limit=RateLimit(per_minute=60_000, burst=10_000))
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
        thread = threading.Thread(target=server.run, name="uvicorn-web-tests", daemon=True)
        thread.start()
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.05)
        assert server.started, "uvicorn did not start within 10 s"

        worker = Worker(settings=settings, factory=factory, chain=chain, anchorer=anchorer)
        base_url = f"http://127.0.0.1:{port}"
        http = httpx2.Client(base_url=base_url, timeout=30.0)
        try:
            yield LiveStack(
                base_url=base_url,
                rpc_url=node.url,
                settings=settings,
                factory=factory,
                chain=chain,
                w3=w3,
                worker=worker,
                funder=funder,
                collector_key=collector_key,
                deployment_file=deployment_file,
                http=http,
            )
        finally:
            http.close()
            worker.stop()
            server.should_exit = True
            thread.join(10)
            engine.dispose()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Folder for screenshots and other files a person may want to look at after a run."""
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    return ARTIFACTS_DIR
