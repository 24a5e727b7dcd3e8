"""The demo's HTTP client: a collector with an API key, and contributors signing in with their keys."""

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from ledger.auth.siwe import SiweMessage, format_timestamp

logger = logging.getLogger(__name__)


class ApiError(RuntimeError):
    """The API returned an unexpected status."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} returned {status}: {body[:300]}")
        self.status = status


class DemoClient:
    """Talks to the API over real HTTP, as a collector and as each contributor."""

    def __init__(self, base_url: str, collector_key: str, *, domain: str) -> None:
        self.base_url = base_url
        self.domain = domain
        self.http = httpx2.Client(base_url=base_url, timeout=60.0)
        self.collector_headers = {"X-API-Key": collector_key}
        self._tokens: dict[str, str] = {}

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def request(self, method: str, path: str, *, expect: tuple[int, ...] = (200,), **kwargs: Any) -> httpx2.Response:
        """Send a request and raise ApiError unless the status is one of `expect`."""
        response = self.http.request(method, path, **kwargs)
        if response.status_code not in expect:
            raise ApiError(method, path, response.status_code, response.text)
        return response

    def submit_batch(self, payloads: list[dict]) -> list[dict]:
        """Submit sessions as the collector; return one result per payload."""
        response = self.request("POST", "/v1/sessions/batch", json={"sessions": payloads}, headers=self.collector_headers)
        return response.json()["results"]

    def submit_one(self, payload: dict, *, expect: tuple[int, ...] = (200,)) -> httpx2.Response:
        """Submit one session as the collector."""
        return self.request("POST", "/v1/sessions", json=payload, headers=self.collector_headers, expect=expect)

    def sign_in(self, account: LocalAccount, *, chain_id: int) -> str:
        """Sign in with Ethereum as `account` and return (and cache) its bearer token."""
        if account.address in self._tokens:
            return self._tokens[account.address]
        nonce = self.request("GET", "/v1/auth/nonce").json()
        now = datetime.now(tz=UTC)
        message = SiweMessage(
            domain=self.domain,
            address=account.address,
            statement=nonce["statement"],
            uri=self.base_url,
            chain_id=chain_id,
            nonce=nonce["nonce"],
            issued_at=format_timestamp(now),
            expiration_time=format_timestamp(now + timedelta(minutes=30)),
        )
        text = message.to_text()
        signature = account.sign_message(encode_defunct(text=text)).signature.to_0x_hex()
        response = self.request("POST", "/v1/auth/sign-in", json={"message": text, "signature": signature})
        token = response.json()["token"]
        self._tokens[account.address] = token
        return token

    def as_contributor(self, account: LocalAccount, *, chain_id: int) -> dict[str, str]:
        """Return the Authorization header of `account`, signing in if needed."""
        return {"Authorization": f"Bearer {self.sign_in(account, chain_id=chain_id)}"}

    def epoch(self, number: int) -> dict | None:
        """Return epoch `number`, or None when it does not exist yet."""
        response = self.request("GET", f"/v1/epochs/{number}", expect=(200, 404))
        return response.json() if response.status_code == 200 else None
