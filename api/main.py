"""ASGI entry point for `ledger serve --workers N`: each worker process builds its own app."""

from fastapi import FastAPI

from api.app import create_app
from ledger.config import get_settings
from ledger.db import session_factory
from ledger.logs import configure_logging


def build_app() -> FastAPI:
    """Create the app from the environment; the database URL must be set (DATABASE_URL)."""
    settings = get_settings()
    if not settings.database_url:
        raise RuntimeError("DATABASE_URL must be set to run several API workers")
    configure_logging(settings.log_level)
    from ledger.cli import _chain  # noqa: PLC0415 - the CLI owns chain resolution from settings

    return create_app(settings, session_factory(settings.database_url, settings.database_pool_size), _chain(settings))
