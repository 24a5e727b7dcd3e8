"""Fixtures for the service's chain side: a real anvil, fresh contracts and a fresh database per
test, a built epoch with scored sessions, and the worker as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker
from web3 import Web3

from ledger import PROJECT_ROOT
from ledger.chain.client import ChainContext
from ledger.chain.contracts import Deployment, deploy_contracts
from ledger.chain.devnet import AnvilNode, start_anvil
from ledger.config import Settings
from ledger.db import unit_of_work
from ledger.epochs.build import build_epoch
from ledger.epochs.service import close_epoch, ensure_open_epoch
from ledger.intake.service import submit_sessions
from ledger.models import Epoch
from tests.conftest import migrated_database
from tests.ledger.factories import new_address, submission

#: Tokens per epoch, the same in the contract and in the service settings.
EMISSION_PER_EPOCH = 1_000 * 10**18

#: Environment variables of the developer's shell that must not reach a worker under test.
_SERVICE_VARIABLES = ("DATABASE_URL", "RPC_URL")


@pytest.fixture(scope="module")
def anvil() -> Iterator[AnvilNode]:
    node = start_anvil()
    yield node
    node.stop()


@dataclass
class ChainSetup:
    """A fresh deployment on the module's anvil, and the accounts that hold its roles."""

    node: AnvilNode
    w3: Web3
    deployment: Deployment
    deployment_file: Path
    admin: LocalAccount
    anchorer: LocalAccount
    guardian: LocalAccount
    challenge_period: int

    def context(self) -> ChainContext:
        """Open a ChainContext as the worker does, checking the chain id."""
        return ChainContext.open(self.node.url, self.deployment, expected_chain_id=self.node.chain_id)

    def rpc(self, method: str, *params: object) -> object:
        """Send a raw JSON-RPC request (anvil's `evm_*` methods) and return its result."""
        response = self.w3.provider.make_request(method, list(params))
        assert "error" not in response, f"{method} failed: {response['error']}"
        return response["result"]

    def anchored_events(self) -> list:
        """Return every `EpochAnchored` event of the canonical chain."""
        distributor = self.context().distributor
        return list(distributor.events.EpochAnchored().get_logs(from_block=self.deployment.deploy_block))


def deploy(node: AnvilNode, directory: Path, *, challenge_period: int) -> ChainSetup:
    """Deploy fresh contracts on `node` and write their record to `directory`."""
    w3 = Web3(Web3.HTTPProvider(node.url))
    admin, anchorer, guardian = node.accounts[0], node.accounts[1], node.accounts[2]
    deployment = deploy_contracts(
        w3,
        admin,
        admin=admin.address,
        anchorer=anchorer.address,
        guardian=guardian.address,
        emission_per_epoch=EMISSION_PER_EPOCH,
        challenge_period=challenge_period,
    )
    path = directory / "deployment.json"
    deployment.save(path)
    return ChainSetup(node, w3, deployment, path, admin, anchorer, guardian, challenge_period)


@pytest.fixture
def chain_setup(anvil: AnvilNode, tmp_path: Path) -> ChainSetup:
    """Contracts without a challenge period: an anchored claims root is active at once."""
    return deploy(anvil, tmp_path, challenge_period=0)


@pytest.fixture
def ledger_database() -> Iterator[str]:
    """URL of a database of its own for this test, dropped afterwards.

    The worker subprocess commits for real, so tests here cannot share the rolled-back session.
    """
    with migrated_database("ledger_chain") as url:
        yield url


@pytest.fixture
def factory(ledger_database: str) -> Iterator[sessionmaker[DbSession]]:
    engine = create_engine(ledger_database)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


@pytest.fixture
def chain_settings() -> Settings:
    return Settings(
        _env_file=None,
        environment="test",
        emission_per_epoch=EMISSION_PER_EPOCH,
        rate_limit_sessions_per_hour=1_000,
        epoch_duration_seconds=3_600,
    )


def build_first_epoch(
    factory: sessionmaker[DbSession], settings: Settings, *, contributors: int = 3, addresses: list[str] | None = None
) -> list[str]:
    """Score one session for each contributor, then close and build epoch 1.

    The contributors are `addresses`, or else `contributors` new addresses; returns them. The
    next epoch opens now, so a worker tick started within the hour does not close it.
    """
    now = datetime.now(tz=UTC)
    if addresses is None:
        addresses = [new_address() for _ in range(contributors)]
    with unit_of_work(factory) as db:
        ensure_open_epoch(db, settings=settings, now=now - timedelta(hours=2))
        items = [submission(address, now - timedelta(hours=1), clicks=100 * (index + 1)) for index, address in enumerate(addresses)]
        submit_sessions(db, items, settings=settings, now=now)
    with unit_of_work(factory) as db:
        closed = close_epoch(db, settings=settings, now=now, force=True)
        assert closed is not None and closed.number == 1
        build_epoch(db, 1)
    return addresses


def load_epoch(factory: sessionmaker[DbSession], number: int) -> Epoch:
    with factory() as db:
        epoch = db.scalar(select(Epoch).where(Epoch.number == number))
        assert epoch is not None
        return epoch


def worker_environment(setup: ChainSetup, database_url: str, **extra: str) -> dict[str, str]:
    """Environment of a `ledger worker` subprocess for this deployment and database."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("LEDGER_") and name not in _SERVICE_VARIABLES
    }
    environment.update(
        {
            "DATABASE_URL": database_url,
            "RPC_URL": setup.node.url,
            "LEDGER_CHAIN_ID": str(setup.node.chain_id),
            "LEDGER_DEPLOYMENT_FILE": str(setup.deployment_file),
            "LEDGER_ANCHORER_PRIVATE_KEY": setup.anchorer.key.to_0x_hex(),
            "LEDGER_EMISSION_PER_EPOCH": str(EMISSION_PER_EPOCH),
            "LEDGER_EPOCH_DURATION_SECONDS": "3600",
            "LEDGER_CONFIRMATIONS": "1",
        }
    )
    environment.update(extra)
    return environment


def run_worker_once(environment: dict[str, str], workdir: Path) -> subprocess.CompletedProcess[str]:
    """Run `ledger worker --once` as a separate process and return how it ended."""
    return subprocess.run(
        [sys.executable, "-m", "ledger.cli", "worker", "--once"],
        env={**environment, "PYTHONPATH": str(PROJECT_ROOT)},
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
