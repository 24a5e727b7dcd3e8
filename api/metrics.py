"""Prometheus metrics: request counts and latencies, sessions by outcome, epochs by state."""

import logging
import time

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import func, select
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import Response

from ledger.models import Epoch, Session

logger = logging.getLogger(__name__)

REQUESTS = Counter("ledger_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("ledger_http_request_seconds", "HTTP request latency in seconds", ["method", "route"])
SESSIONS = Gauge("ledger_sessions", "Stored sessions by status", ["status"])
EPOCHS = Gauge("ledger_epochs", "Epochs by state", ["status"])
LATEST_ANCHORED = Gauge("ledger_latest_anchored_epoch", "Highest epoch anchored or active on chain")


class MetricsMiddleware(BaseHTTPMiddleware):
    """Count requests and time them by route template (never by raw path, which holds ids)."""

    async def dispatch(self, request: Request, call_next) -> Response:  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        LATENCY.labels(request.method, template).observe(time.perf_counter() - started)
        REQUESTS.labels(request.method, template, str(response.status_code)).inc()
        return response


def refresh_ledger_gauges(state) -> None:  # type: ignore[no-untyped-def]
    """Read session and epoch counts from the database into the gauges."""
    try:
        with state.factory() as db:
            for status, count in db.execute(select(Session.status, func.count()).group_by(Session.status)):
                SESSIONS.labels(status.value).set(count)
            for status, count in db.execute(select(Epoch.status, func.count()).group_by(Epoch.status)):
                EPOCHS.labels(status.value).set(count)
            latest = db.scalar(select(func.max(Epoch.number)).where(Epoch.status.in_(["anchored", "active"])))
            LATEST_ANCHORED.set(latest or 0)
    except Exception as error:  # noqa: BLE001 - metrics must not fail the scrape
        logger.warning("metrics.refresh_failed error_type=%s", type(error).__name__)
