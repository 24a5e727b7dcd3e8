"""Prometheus metrics: requests and latencies, sessions by outcome, epoch and anchoring state,
and how far the claim indexer is behind the chain.

Counters count what this process handled since it started. Gauges are read from the database
(and the chain head from the RPC endpoint) on each scrape, so every replica reports the same
values for them.
"""

import logging
import re
import time
import uuid

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import func, select

from ledger.chain.indexer import CURSOR_NAME
from ledger.logs import request_id
from ledger.models import AnchorTransaction, Epoch, IndexerCursor, Session

logger = logging.getLogger(__name__)

REQUESTS = Counter("ledger_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("ledger_http_request_seconds", "HTTP request latency in seconds", ["method", "route"])
SESSIONS = Gauge("ledger_sessions", "Stored sessions by status", ["status"])
EPOCHS = Gauge("ledger_epochs", "Epochs by state", ["status"])
LATEST_ANCHORED = Gauge("ledger_latest_anchored_epoch", "Highest epoch anchored or active on chain")
LATEST_ACTIVE = Gauge("ledger_latest_active_epoch", "Highest epoch whose claims root is active (claimable)")
OPEN_EPOCH = Gauge("ledger_open_epoch", "Number of the epoch taking sessions now, 0 when none is open")
ANCHOR_TRANSACTIONS = Gauge("ledger_anchor_transactions", "Anchor transactions by status", ["status"])
SUBMISSIONS = Counter(
    "ledger_session_submissions_total",
    "Submitted sessions by outcome: status and reason code (empty when none); replays included",
    ["status", "reason"],
)
INDEXED_BLOCK = Gauge("ledger_claim_indexer_block", "Last block the claim indexer has read")
INDEXER_LAG = Gauge("ledger_claim_indexer_lag_blocks", "Chain head minus the last block the claim indexer has read")


#: Routes outside the OpenAPI document, by template: the contributor page and its assets.
PAGE_TEMPLATES = ("/", "/web/{path}")


class RouteTemplates:
    """Maps a request path to its route template, built from the app's OpenAPI document.

    Templates come from the document rather than from the matched route, because a route of an
    included router knows only its path inside that router (without the /v1 prefix).
    """

    def __init__(self) -> None:
        self._patterns: list[tuple[re.Pattern[str], str]] | None = None

    def _build(self, app) -> list[tuple[re.Pattern[str], str]]:  # type: ignore[no-untyped-def]
        templates = [*app.openapi().get("paths", {}), *PAGE_TEMPLATES]
        # Fixed paths first, so /v1/epochs/close is never taken for /v1/epochs/{number}.
        templates.sort(key=lambda template: (template.count("{"), template))
        patterns = []
        for template in templates:
            regex = ""
            for part in re.split(r"(\{[^}]+\})", template):
                if part == "{path}":
                    regex += ".+"
                elif part.startswith("{"):
                    regex += "[^/]+"
                else:
                    regex += re.escape(part)
            patterns.append((re.compile(regex), template))
        return patterns

    def template_of(self, app, path: str) -> str:  # type: ignore[no-untyped-def]
        """Return the route template matching `path`, or `unmatched`."""
        if self._patterns is None:
            self._patterns = self._build(app)
        for pattern, template in self._patterns:
            if pattern.fullmatch(path):
                return template
        return "unmatched"


class RequestContextMiddleware:
    """Give each request an id, then count, time and log it by route template.

    A plain ASGI middleware rather than Starlette's BaseHTTPMiddleware, which adds two tasks and
    a response copy per layer: on a cheap route that overhead was most of the time.
    The log line names the route template, never the raw path (which contains ids), the client
    address, the query string or a header.
    """

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self.app = app
        self.templates = RouteTemplates()

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = ""
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        current = incoming if 0 < len(incoming) <= 64 and incoming.isascii() and incoming.isprintable() else uuid.uuid4().hex
        token = request_id.set(current)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message) -> None:  # type: ignore[no-untyped-def]
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", current.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            method = scope["method"]
            template = self.templates.template_of(scope["app"], scope["path"])
            LATENCY.labels(method, template).observe(elapsed)
            REQUESTS.labels(method, template, str(status)).inc()
            logger.info(
                "http.request method=%s route=%s status=%d duration_ms=%.1f", method, template, status, elapsed * 1000
            )
            request_id.reset(token)


def count_submissions(results) -> None:  # type: ignore[no-untyped-def]
    """Count session results by status and reason."""
    for result in results:
        SUBMISSIONS.labels(result.status, result.reason or "").inc()


def refresh_ledger_gauges(state) -> None:  # type: ignore[no-untyped-def]
    """Read session, epoch, anchoring and indexer state into the gauges."""
    try:
        with state.factory() as db:
            for status, count in db.execute(select(Session.status, func.count()).group_by(Session.status)):
                SESSIONS.labels(status.value).set(count)
            for status, count in db.execute(select(Epoch.status, func.count()).group_by(Epoch.status)):
                EPOCHS.labels(status.value).set(count)
            latest = db.scalar(select(func.max(Epoch.number)).where(Epoch.status.in_(["anchored", "active"])))
            LATEST_ANCHORED.set(latest or 0)
            LATEST_ACTIVE.set(db.scalar(select(func.max(Epoch.number)).where(Epoch.status == "active")) or 0)
            OPEN_EPOCH.set(db.scalar(select(func.max(Epoch.number)).where(Epoch.status == "open")) or 0)
            for status, count in db.execute(
                select(AnchorTransaction.status, func.count()).group_by(AnchorTransaction.status)
            ):
                ANCHOR_TRANSACTIONS.labels(str(status)).set(count)
            indexed = db.scalar(select(IndexerCursor.block_number).where(IndexerCursor.name == CURSOR_NAME))
    except Exception as error:  # noqa: BLE001 - metrics must not fail the scrape
        logger.warning("metrics.refresh_failed source=database error_type=%s", type(error).__name__)
        return
    if indexed is None or state.chain is None:
        return
    INDEXED_BLOCK.set(indexed)
    try:
        INDEXER_LAG.set(max(state.chain.head() - indexed, 0))
    except Exception as error:  # noqa: BLE001
        logger.warning("metrics.refresh_failed source=chain error_type=%s", type(error).__name__)
