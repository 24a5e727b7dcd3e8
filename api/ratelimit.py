"""Per-client rate limits on the public routes, kept in the memory of the API process.

Public routes need no credentials: earnings, claim payloads, contribution proofs, epochs and
their trees, the deployment record, and the two sign-in steps. Each client address gets a
token bucket of `burst` requests that refills at `per_minute` requests per minute. A request
over the limit gets 429 with a `Retry-After` header. Collector routes (API key) and contributor
routes (bearer token) are not limited here, because they carry credentials.

NOTE: the buckets live in one process. With N API processes or replicas a client gets up to N
times the rate, and a restart resets them. Clients are told apart by the connection's address,
so behind a reverse proxy run uvicorn with `--proxy-headers --forwarded-allow-ips <proxy>`, or
every client shares the proxy's bucket.

Client addresses are neither logged nor kept: buckets are keyed by HMAC-SHA256 of the address
under a random key made when the process starts.
"""

import hashlib
import hmac
import math
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import FastAPI
from prometheus_client import Counter
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import error_body

RATE_LIMITED = Counter("ledger_http_rate_limited_total", "Requests rejected with 429 on public routes")

#: Method and path patterns of the public routes. Paths with ids are matched as templates.
PUBLIC_ROUTES = (
    ("GET", re.compile(r"/v1/contributors/[^/]+/earnings")),
    ("GET", re.compile(r"/v1/claims/[^/]+")),
    ("GET", re.compile(r"/v1/sessions/[^/]+/proof")),
    ("GET", re.compile(r"/v1/epochs(/[^/]+(/claims-tree)?)?")),
    ("GET", re.compile(r"/v1/deployment")),
    ("GET", re.compile(r"/v1/auth/nonce")),
    ("POST", re.compile(r"/v1/auth/sign-in")),
)


def is_public(method: str, path: str) -> bool:
    """Return whether a request line is one of the rate-limited public routes."""
    return any(method == route_method and pattern.fullmatch(path) for route_method, pattern in PUBLIC_ROUTES)


@dataclass(frozen=True)
class RateLimit:
    """Token bucket settings shared by every client of the public routes."""

    per_minute: int = 120
    """Requests per minute a client may sustain."""
    burst: int = 60
    """Requests a client may send at once after being idle."""
    max_clients: int = 100_000
    """Buckets kept; past this the least recently seen client is forgotten (it starts full again)."""

    def __post_init__(self) -> None:
        if self.per_minute < 1 or self.burst < 1 or self.max_clients < 1:
            raise ValueError(f"rate limit values must be at least 1, got {self}")


class TokenBuckets:
    """One token bucket per client key, least recently seen first, safe across threads."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self._buckets: OrderedDict[bytes, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, client: bytes) -> float:
        """Take one request from `client`'s bucket; return 0 if allowed, else seconds to wait."""
        rate = self.limit.per_minute / 60.0
        now = self.clock()
        with self._lock:
            tokens, seen = self._buckets.pop(client, (float(self.limit.burst), now))
            tokens = min(float(self.limit.burst), tokens + (now - seen) * rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[client] = (tokens, now)
            while len(self._buckets) > self.limit.max_clients:
                self._buckets.popitem(last=False)
        return 0.0 if allowed else (1.0 - tokens) / rate


class PublicRateLimitMiddleware:
    """ASGI middleware that returns 429 when a client exceeds the public routes' rate limit."""

    def __init__(self, app: ASGIApp, *, limit: RateLimit) -> None:
        self.app = app
        self.limit = limit
        self.buckets = TokenBuckets(limit)
        self._key = secrets.token_bytes(32)

    def _client_key(self, scope: Scope) -> bytes:
        client = scope.get("client")
        address = client[0] if client else "unknown"
        return hmac.new(self._key, address.encode(), hashlib.sha256).digest()[:16]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_public(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(self._client_key(scope))
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        RATE_LIMITED.inc()
        retry_after = max(1, math.ceil(wait))
        message = (
            f"too many requests: public routes allow {self.limit.per_minute} per minute per client "
            f"(bursts of {self.limit.burst}); retry in {retry_after} s"
        )
        response = JSONResponse(
            error_body("rate_limited", message), status_code=429, headers={"Retry-After": str(retry_after)}
        )
        await response(scope, receive, send)


def document_rate_limits(app: FastAPI, limit: RateLimit) -> None:
    """Add the 429 response to the OpenAPI description of every public route."""
    description = f"Rate limited: more than {limit.per_minute} requests per minute from this client"
    build_schema = app.openapi

    def openapi_with_rate_limits() -> dict:
        schema = build_schema()
        for path, operations in schema.get("paths", {}).items():
            sample_path = re.sub(r"\{[^}]+\}", "x", path)
            for method, operation in operations.items():
                if is_public(method.upper(), sample_path):
                    operation.setdefault("responses", {}).setdefault("429", {"description": description})
        return schema

    app.openapi = openapi_with_rate_limits  # type: ignore[method-assign]
