"""Shared fixtures: a fresh PostgreSQL database per test run, migrated with alembic.

Tests use the PostgreSQL server at TEST_DATABASE_ADMIN_URL (default: 127.0.0.1:5432, user
postgres, trust auth). Each run creates its own database and drops it at the end.
"""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from ledger.config import Settings
from ledger.db import migrate

ADMIN_URL = os.environ.get("TEST_DATABASE_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _database_url(name: str) -> str:
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


@contextmanager
def migrated_database(prefix: str = "ledger_test") -> Iterator[str]:
    """Create a database, migrate it with alembic, yield its URL and drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = _database_url(name).replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        migrate(url)
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """URL of a database created and migrated for this test run, dropped afterwards."""
    with migrated_database() as url:
        yield url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    """Engine bound to the test run's database."""
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session whose work is rolled back after the test, commits included."""
    with engine.connect() as connection:
        transaction = connection.begin()
        session = Session(bind=connection, join_transaction_mode="create_savepoint")
        try:
            yield session
        finally:
            session.close()
            transaction.rollback()


@pytest.fixture(scope="module")
def isolated_database_url() -> Iterator[str]:
    """URL of a database of the test module's own, for tests whose transactions really commit."""
    with migrated_database("ledger_iso") as url:
        yield url


@pytest.fixture(scope="module")
def isolated_engine(isolated_database_url: str) -> Iterator[Engine]:
    """Engine bound to the module's own database."""
    engine = create_engine(isolated_database_url, pool_size=12)
    yield engine
    engine.dispose()


@pytest.fixture
def committing_factory(isolated_engine: Engine) -> sessionmaker[Session]:
    """A session factory whose commits are real, on the module's own database."""
    return sessionmaker(isolated_engine, expire_on_commit=False)


@pytest.fixture
def settings() -> Settings:
    """Settings for tests: small emission, no challenge period, generous rate limit."""
    return Settings(
        _env_file=None,
        environment="test",
        emission_per_epoch=1_000 * 10**18,
        rate_limit_sessions_per_hour=1_000,
        epoch_duration_seconds=3_600,
    )


@pytest.fixture
def now() -> datetime:
    """A fixed instant the tests use as the current time."""
    return datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
