"""An API app over the test database, without a chain, driven through Starlette's TestClient."""

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from api.app import create_app
from ledger.auth.keys import Scope
from ledger.auth.service import create_api_key
from ledger.db import unit_of_work
from ledger.epochs.service import ensure_open_epoch
from tests.conftest import migrated_database


@pytest.fixture(scope="module")
def api_factory():
    """Sessions on a database of the module's own: API requests commit for real."""
    with migrated_database("ledger_api") as url:
        engine = create_engine(url)
        yield sessionmaker(engine, expire_on_commit=False)
        engine.dispose()


@pytest.fixture
def collector_key(api_factory, settings):
    with unit_of_work(api_factory) as db:
        ensure_open_epoch(db, settings=settings, now=datetime.now(tz=UTC))
        return create_api_key(db, name="test collector", scope=Scope.sessions_write)


@pytest.fixture
def client(api_factory, settings, collector_key):
    app = create_app(settings, api_factory, None)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
