"""Database engine, sessions and migrations.

The edge that starts a unit of work (an API request, a scheduler job, a CLI command) commits or
rolls back; services only flush.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from alembic import command
from alembic.config import Config
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from ledger import PROJECT_ROOT

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def normalize_database_url(url: str) -> str:
    """Make a plain `postgresql://` URL use the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


#: Connections an engine keeps open by default.
DEFAULT_POOL_SIZE = 16

#: Connections an engine may open beyond its pool for a burst, closed again when returned.
#: PostgreSQL starts a process for each new connection, so more would cost more than waiting.
POOL_OVERFLOW = 4


@lru_cache(maxsize=8)
def get_engine(url: str, pool_size: int = DEFAULT_POOL_SIZE) -> Engine:
    """Return a pooled engine for `url`, created once per process and pool size.

    Connections are not pinged when taken from the pool: a ping is a round trip, and it cost
    the public read routes a quarter of their throughput (docs/benchmarks.md). When the server
    drops connections, the first statement on one fails with OperationalError (the API returns
    503 with Retry-After) and SQLAlchemy then replaces every connection of the pool.
    """
    return create_engine(
        normalize_database_url(url),
        pool_size=pool_size,
        max_overflow=POOL_OVERFLOW,
    )


def session_factory(url: str, pool_size: int = DEFAULT_POOL_SIZE) -> sessionmaker[Session]:
    """Return a session factory bound to the engine for `url`."""
    return sessionmaker(get_engine(url, pool_size), expire_on_commit=False)


class ReadOnlySessionError(RuntimeError):
    """A session from `read_only_factory` was asked to write."""


def _reject_flush(session: Session, flush_context: object, instances: object) -> None:
    raise ReadOnlySessionError("a read-only session cannot write: use a session from the write factory")


def read_only_factory(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """Return a factory of autocommit sessions over the same engine and pool, for reads.

    Each statement runs on its own, with no BEGIN or COMMIT around it, so a read made of one
    statement costs one round trip and reads one snapshot. Flushing ORM changes raises
    `ReadOnlySessionError`, so a read path cannot commit a write by accident.
    """
    engine = factory.kw.get("bind")
    if engine is None:
        return factory
    read_factory = sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False)
    event.listen(read_factory, "before_flush", _reject_flush)
    return read_factory


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Open a session, commit when the block succeeds and roll back when it raises."""
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def read_pool(factory: sessionmaker[Session], *, size: int) -> AsyncConnectionPool | None:
    """Return a closed pool of `size` autocommit async connections to the factory's database.

    Coroutine routes read through it without a worker thread. Open it with `await pool.open()`
    in the event loop that uses it. Returns None for a factory without an engine.
    """
    engine = factory.kw.get("bind")
    if engine is None:
        return None
    conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    return AsyncConnectionPool(
        conninfo, min_size=size, max_size=size, kwargs={"autocommit": True}, open=False, name="ledger-read"
    )


def alembic_config(url: str) -> Config:
    """Build an alembic configuration for `url` without an `alembic.ini` file."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", normalize_database_url(url).replace("%", "%%"))
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Upgrade the database at `url` to `revision`."""
    logger.info("db.migrate.start revision=%s", revision)
    command.upgrade(alembic_config(url), revision)
    logger.info("db.migrate.done revision=%s", revision)
