"""Logging setup: one event per line, `time level logger event key=value ...`, with the request id.

Events are named like `anchor.tx.replaced` and carry ids as key=value fields. Keys, tokens, URLs
of users and raw payloads are never logged.
"""

import contextvars
import logging
import sys

#: Correlation id of the HTTP request or job being handled, added to every line.
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


def configure_logging(level: str = "INFO") -> None:
    """Send structured lines to standard error; quiet the chattiest libraries."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s request_id=%(request_id)s",
            datefmt="%Y-%m-%dT%H:%M:%S%z",
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("web3", "urllib3", "httpx2", "httpcore2", "apscheduler", "uvicorn.access", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
