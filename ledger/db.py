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
from sqlalchemy import Engine, create_engine
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


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    """Return a pooled engine for `url`, created once per process."""
    return create_engine(
        normalize_database_url(url),
        pool_size=10,
        max_overflow=20,
        pool_pre_ping=True,
    )


def session_factory(url: str) -> sessionmaker[Session]:
    """Return a session factory bound to the engine for `url`."""
    return sessionmaker(get_engine(url), expire_on_commit=False)


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
