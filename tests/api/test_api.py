"""HTTP behaviour of the API: status codes, JSON errors, idempotency and ownership."""

import uuid
from datetime import UTC, datetime, timedelta

from eth_account import Account
from eth_account.messages import encode_defunct

from ledger.auth.siwe import SiweMessage, format_timestamp
from ledger.db import unit_of_work
from ledger.epochs.build import build_epoch
from ledger.epochs.service import close_epoch, ensure_open_epoch
from ledger.merkle import StandardMerkleTree
from tests.ledger.factories import session_payload


def headers(key):
    return {"X-API-Key": key}


def recent():
    return datetime.now(tz=UTC) - timedelta(hours=1)


def sign_in(client, account, settings):
    nonce = client.get("/v1/auth/nonce").json()
    now = datetime.now(tz=UTC)
    message = SiweMessage(
        domain=settings.auth_domain,
        address=account.address,
        uri="http://localhost/",
        chain_id=nonce["chain_id"] or 0,
        nonce=nonce["nonce"],
        issued_at=format_timestamp(now),
        expiration_time=format_timestamp(now + timedelta(minutes=5)),
    ).to_text()
    signature = account.sign_message(encode_defunct(text=message)).signature.to_0x_hex()
    response = client.post("/v1/auth/sign-in", json={"message": message, "signature": signature})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_submit_scores_and_replays(client, collector_key):
    payload = session_payload(Account.create().address, recent())

    first = client.post("/v1/sessions", json=payload, headers=headers(collector_key))
    again = client.post("/v1/sessions", json=payload, headers=headers(collector_key))

    assert first.status_code == 200
    assert first.json()["status"] == "scored"
    assert again.json()["replayed"] is True
    assert again.json()["points"] == first.json()["points"]


def test_conflicting_payload_returns_409(client, collector_key):
    payload = session_payload(Account.create().address, recent())
    client.post("/v1/sessions", json=payload, headers=headers(collector_key))

    response = client.post("/v1/sessions", json={**payload, "clicks": 1}, headers=headers(collector_key))

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "session_conflict"


def test_unknown_field_returns_422_naming_it(client, collector_key):
    payload = session_payload(Account.create().address, recent(), page_url="https://example.org/")

    response = client.post("/v1/sessions", json=payload, headers=headers(collector_key))

    assert response.status_code == 422
    assert "page_url" in response.json()["error"]["message"]


def test_missing_key_returns_401(client):
    response = client.post("/v1/sessions", json=session_payload(Account.create().address, recent()))

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_api_key"


def test_batch_reports_each_item(client, collector_key):
    good = session_payload(Account.create().address, recent())
    bad = session_payload(Account.create().address, recent(), clicks="many")

    response = client.post("/v1/sessions/batch", json={"sessions": [good, bad]}, headers=headers(collector_key))

    results = response.json()["results"]
    assert response.status_code == 200
    assert results[0]["status"] == "scored"
    assert results[1]["status"] == "invalid"
    assert results[1]["errors"][0]["loc"] == ["clicks"]


def test_earnings_of_unknown_address_is_404(client):
    response = client.get(f"/v1/contributors/{Account.create().address}/earnings")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "contributor_not_found"


def test_earnings_of_malformed_address_is_422(client):
    response = client.get("/v1/contributors/0x1234/earnings")

    assert response.status_code == 422
    assert "0x1234" in response.json()["error"]["message"]


def test_contributor_deletes_only_own_session(client, collector_key, settings):
    owner, other = Account.create(), Account.create()
    payload = session_payload(owner.address, recent())
    client.post("/v1/sessions", json=payload, headers=headers(collector_key))

    denied = client.delete(f"/v1/me/sessions/{payload['session_id']}", headers=sign_in(client, other, settings))
    deleted = client.delete(f"/v1/me/sessions/{payload['session_id']}", headers=sign_in(client, owner, settings))

    assert denied.status_code == 404
    assert deleted.status_code == 200
    assert deleted.json()["status"] == "withdrawn"


def test_nonce_is_single_use(client, settings):
    account = Account.create()
    nonce = client.get("/v1/auth/nonce").json()
    now = datetime.now(tz=UTC)
    message = SiweMessage(
        domain=settings.auth_domain,
        address=account.address,
        uri="http://localhost/",
        chain_id=0,
        nonce=nonce["nonce"],
        issued_at=format_timestamp(now),
    ).to_text()
    body = {"message": message, "signature": account.sign_message(encode_defunct(text=message)).signature.to_0x_hex()}

    assert client.post("/v1/auth/sign-in", json=body).status_code == 200
    reused = client.post("/v1/auth/sign-in", json=body)
    assert reused.status_code == 401
    assert reused.json()["error"]["code"] == "siwe_bad_nonce"


def test_paused_sharing_rejects_later_sessions(client, collector_key, settings):
    account = Account.create()
    auth = sign_in(client, account, settings)
    assert client.put("/v1/me/sharing", json={"sharing": False}, headers=auth).json()["sharing"] is False

    payload = session_payload(account.address, datetime.now(tz=UTC) + timedelta(seconds=1), ended_at=(datetime.now(tz=UTC) + timedelta(minutes=3)).isoformat(), active_seconds=120)
    response = client.post("/v1/sessions", json=payload, headers=headers(collector_key))

    assert response.json()["reason"] == "sharing_paused"


def test_unknown_epoch_is_404_and_health_ok(client):
    assert client.get("/v1/epochs/999999").status_code == 404
    assert client.get("/v1/epochs/not-a-number").status_code == 422
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    assert "ledger_http_requests_total" in client.get("/metrics").text


def test_proof_of_unknown_session_is_404(client):
    response = client.get(f"/v1/sessions/{uuid.uuid4()}/proof")

    assert response.status_code == 404


def test_claims_tree_is_streamed_and_loads(client, api_factory, settings, collector_key):
    now = datetime.now(tz=UTC)
    contributors = [Account.create().address for _ in range(3)]
    body = {"sessions": [session_payload(c, now - timedelta(hours=1)) for c in contributors]}
    assert client.post("/v1/sessions/batch", json=body, headers={"X-API-Key": collector_key}).status_code == 200
    with unit_of_work(api_factory) as db:
        closed = close_epoch(db, settings=settings, now=now, force=True)
        epoch = build_epoch(db, closed.number)
        ensure_open_epoch(db, settings=settings, now=now)

    response = client.get(f"/v1/epochs/{epoch.number}/claims-tree")
    still_open = client.get(f"/v1/epochs/{epoch.number + 1}/claims-tree")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    tree = StandardMerkleTree.load(response.json())
    assert tree.root_bytes == epoch.claims_root
    # Other tests of this module share the database, so the tree has their contributors too.
    assert set(contributors) <= {tree.at(index)[0] for index in range(len(tree))}
    assert still_open.status_code == 404
    assert still_open.json()["error"]["code"] == "tree_not_found"
