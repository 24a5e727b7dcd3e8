"""Per-client rate limits on public routes: token buckets, 429 responses and their scope."""

from eth_account import Account
from fastapi.testclient import TestClient

from api.app import create_app
from api.ratelimit import RateLimit, TokenBuckets, is_public


class FakeClock:
    """A clock the test moves by hand, so refills do not depend on how fast the test runs."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_burst_then_waits():
    clock = FakeClock()
    buckets = TokenBuckets(RateLimit(per_minute=60, burst=3), clock=clock)

    allowed = [buckets.take(b"client") for _ in range(3)]
    wait = buckets.take(b"client")

    assert allowed == [0.0, 0.0, 0.0]
    assert wait == 1.0


def test_bucket_refills_at_rate():
    clock = FakeClock()
    buckets = TokenBuckets(RateLimit(per_minute=60, burst=2), clock=clock)
    buckets.take(b"client")
    buckets.take(b"client")

    clock.now += 1.0

    assert buckets.take(b"client") == 0.0
    assert buckets.take(b"client") > 0.0


def test_buckets_are_per_client():
    buckets = TokenBuckets(RateLimit(per_minute=60, burst=1), clock=FakeClock())

    assert buckets.take(b"first") == 0.0
    assert buckets.take(b"second") == 0.0
    assert buckets.take(b"first") > 0.0


def test_bucket_forgets_least_recent_client():
    buckets = TokenBuckets(RateLimit(per_minute=60, burst=1, max_clients=2), clock=FakeClock())
    buckets.take(b"first")
    buckets.take(b"second")
    buckets.take(b"third")

    assert buckets.take(b"first") == 0.0


def test_public_routes_are_classified():
    assert is_public("GET", "/v1/contributors/0xabc/earnings")
    assert is_public("GET", "/v1/claims/0xabc")
    assert is_public("GET", "/v1/epochs")
    assert is_public("GET", "/v1/epochs/3/claims-tree")
    assert is_public("POST", "/v1/auth/sign-in")
    assert not is_public("POST", "/v1/sessions")
    assert not is_public("GET", "/v1/me/sessions")
    assert not is_public("POST", "/v1/epochs/close")
    assert not is_public("GET", "/healthz")


def test_public_route_returns_429_over_limit(api_factory, settings, collector_key):
    app = create_app(settings, api_factory, None, public_rate_limit=RateLimit(per_minute=1, burst=2))
    address = Account.create().address

    with TestClient(app) as client:
        statuses = [client.get(f"/v1/contributors/{address}/earnings").status_code for _ in range(3)]
        limited = client.get("/v1/epochs")
        collector = client.post("/v1/sessions", json={}, headers={"X-API-Key": collector_key})
        health = client.get("/healthz")
        metrics = client.get("/metrics").text

    assert statuses == [404, 404, 429]
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert "1 per minute" in limited.json()["error"]["message"]
    assert int(limited.headers["retry-after"]) >= 1
    assert collector.status_code == 422
    assert health.status_code == 200
    assert "ledger_http_rate_limited_total" in metrics


def test_openapi_documents_429_on_public_routes(client):
    paths = client.get("/openapi.json").json()["paths"]

    assert "429" in paths["/v1/contributors/{address}/earnings"]["get"]["responses"]
    assert "429" in paths["/v1/auth/sign-in"]["post"]["responses"]
    assert "429" not in paths["/v1/sessions"]["post"]["responses"]
