"""JSON error responses with a stable code and a message, for every failure."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.chain.errors import ChainError
from ledger.errors import LedgerError

logger = logging.getLogger(__name__)


def error_body(code: str, message: str, **details: object) -> dict:
    """Return the error document every endpoint uses."""
    body: dict = {"error": {"code": code, "message": message}}
    if details:
        body["error"]["details"] = details
    return body


def _describe(errors: list[dict]) -> str:
    parts = []
    for error in errors[:5]:
        location = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body",))
        parts.append(f"{location or 'request'}: {error.get('msg')}")
    return "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    """Map domain, validation, HTTP and unexpected errors to JSON responses."""

    @app.exception_handler(LedgerError)
    async def _ledger_error(request: Request, error: LedgerError) -> JSONResponse:
        return JSONResponse(error_body(error.code, error.message, **error.details), status_code=error.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in error.errors()
        ]
        return JSONResponse(
            error_body("invalid_request", _describe(errors), errors=errors), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return JSONResponse(error_body(code, str(error.detail)), status_code=error.status_code)

    @app.exception_handler(OperationalError)
    async def _database_down(request: Request, error: OperationalError) -> JSONResponse:
        logger.error("api.database_unavailable path=%s", request.url.path)
        return JSONResponse(error_body("database_unavailable", "the database is unavailable: retry later"), status_code=503)

    @app.exception_handler(ChainError)
    async def _chain_down(request: Request, error: ChainError) -> JSONResponse:
        logger.error("api.chain_error path=%s error_type=%s", request.url.path, type(error).__name__)
        return JSONResponse(error_body("chain_unavailable", f"the chain endpoint failed: {error}"), status_code=503)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        logger.exception("api.unhandled_error path=%s", request.url.path)
        return JSONResponse(error_body("internal_error", "internal error: it was logged"), status_code=500)
