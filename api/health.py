"""Liveness, readiness and Prometheus metrics."""

import logging

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from api.deps import StateDep
from api.metrics import refresh_ledger_gauges

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict:
    """Return 200 while the process serves requests."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Database or chain unreachable"}})
def readyz(state: StateDep) -> JSONResponse:
    """Return 200 when the database and the RPC endpoint answer, 503 naming what does not."""
    checks: dict[str, str] = {}
    try:
        with state.factory() as db:
            db.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as error:  # noqa: BLE001 - readiness reports, never raises
        logger.warning("readyz.database_failed error_type=%s", type(error).__name__)
        checks["database"] = "unreachable"
    if state.chain is None:
        checks["chain"] = "not configured"
    else:
        try:
            state.chain.head()
            checks["chain"] = "ok"
        except Exception as error:  # noqa: BLE001
            logger.warning("readyz.chain_failed error_type=%s", type(error).__name__)
            checks["chain"] = "unreachable"
    ready = checks["database"] == "ok" and checks["chain"] in ("ok", "not configured")
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response)
def metrics(state: StateDep) -> Response:
    """Return Prometheus metrics in the text exposition format."""
    refresh_ledger_gauges(state)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
