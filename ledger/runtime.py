"""Resolving where the database and the chain are: configured endpoints, or embedded defaults.

With no `DATABASE_URL`, PostgreSQL runs embedded from the `pgserver` wheel with its data under
`.ledger/` (or a temporary folder for the demo). With no `RPC_URL`, a local anvil starts from the
project's node_modules.
"""

import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ledger import PROJECT_ROOT

logger = logging.getLogger(__name__)

#: Default home of the embedded database used by `ledger serve`, `worker` and `migrate`.
STATE_DIR = PROJECT_ROOT / ".ledger"


@contextmanager
def embedded_postgres(data_dir: Path | None = None) -> Iterator[str]:
    """Run an embedded PostgreSQL 16 and yield its SQLAlchemy URL (a Unix socket, no TCP port).

    Without `data_dir` the data lives in a temporary folder removed afterwards.
    """
    import pgserver  # noqa: PLC0415 - a large import only needed without DATABASE_URL

    temporary = data_dir is None
    folder = Path(tempfile.mkdtemp(prefix="ledger-pg-")) if temporary else data_dir
    folder.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(folder, cleanup_mode="stop")
    uri = server.get_uri()
    logger.info("embedded_postgres.started data_dir=%s", folder)
    try:
        yield uri.replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        server.cleanup()
        logger.info("embedded_postgres.stopped")
        if temporary:
            shutil.rmtree(folder, ignore_errors=True)
