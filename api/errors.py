"""JSON error responses with a stable code and a message, for every failure."""

import logging

import psycopg
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


#: Maximum length of a rejected value echoed back in a validation error message.
MAX_ECHOED_VALUE_CHARS = 80


def _echo(value: object) -> str | None:
    """Render a rejected scalar for the error message, or None for objects and lists."""
    if isinstance(value, (dict, list, tuple)) or value is None:
        return None
    text = repr(value)
    if len(text) > MAX_ECHOED_VALUE_CHARS:
        text = text[: MAX_ECHOED_VALUE_CHARS - 3] + "..."
    return text


def _describe_one(error: dict) -> str:
    if error.get("type") == "json_invalid":
        position = error["loc"][-1] if error.get("loc") else "?"
        reason = (error.get("ctx") or {}).get("error", "invalid JSON")
        return f"the request body is not valid JSON (at character {position}: {reason})"
    location = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    message = f"{location or 'request body'}: {error.get('msg')}"
    echoed = _echo(error.get("input"))
    if echoed is not None and error.get("type") != "missing":
        message += f", got {echoed}"
    return message


def _describe(errors: list[dict]) -> str:
    """Join the first five validation errors into one message naming each field and value."""
    return "; ".join(_describe_one(error) for error in errors[:5])


def install_error_handlers(app: FastAPI) -> None:
    """Map domain, validation, HTTP and unexpected errors to JSON responses."""

    @app.exception_handler(LedgerError)
    async def _ledger_error(request: Request, error: LedgerError) -> JSONResponse:
        return JSONResponse(error_body(error.code, error.message, **error.details), status_code=error.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        raw_errors = list(error.errors())
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in raw_errors]
        return JSONResponse(
            error_body("invalid_request", _describe(raw_errors), errors=errors), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        message = str(error.detail)
        if error.status_code in (404, 405) and message in ("Not Found", "Method Not Allowed"):
            # Starlette's own routing miss: name the request line and where the routes are listed.
            verb = "is not a route" if error.status_code == 404 else "is not allowed"
            message = f"{request.method} {request.url.path} {verb} of this API: see /docs for the routes"
        return JSONResponse(
            error_body(code, message), status_code=error.status_code, headers=getattr(error, "headers", None)
        )

    # COPY runs on psycopg directly, so its errors arrive without SQLAlchemy's wrapper.
    @app.exception_handler(OperationalError)
    @app.exception_handler(psycopg.OperationalError)
    async def _database_down(request: Request, error: Exception) -> JSONResponse:
        logger.error("api.database_unavailable path=%s", request.url.path)
        return JSONResponse(
            error_body("database_unavailable", "the database is unavailable: retry later"),
            status_code=503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(ChainError)
    async def _chain_down(request: Request, error: ChainError) -> JSONResponse:
        logger.error("api.chain_error path=%s error_type=%s", request.url.path, type(error).__name__)
        return JSONResponse(error_body("chain_unavailable", f"the chain endpoint failed: {error}"), status_code=503)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        logger.exception("api.unhandled_error path=%s", request.url.path)
        return JSONResponse(error_body("internal_error", "internal error: it was logged"), status_code=500)
