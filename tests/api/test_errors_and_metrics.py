"""Error documents name the rejected value; /metrics reports sessions, epochs and requests."""

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import psycopg
from eth_account import Account

from tests.api.test_api import sign_in
from tests.conftest import ADMIN_URL
from tests.ledger.factories import session_payload


@pytest.mark.parametrize(
    ("path", "status", "code", "named"),
    [
        ("/v1/epochs/abc", 422, "invalid_request", "'abc'"),
        ("/v1/epochs/0", 422, "invalid_request", "'0'"),
        ("/v1/epochs/-5/claims-tree", 422, "invalid_request", "'-5'"),
        ("/v1/epochs/999999", 404, "epoch_not_found", "999999"),
        ("/v1/epochs?limit=0", 422, "invalid_request", "'0'"),
        ("/v1/epochs?offset=-1", 422, "invalid_request", "'-1'"),
        ("/v1/sessions/xyz/proof", 422, "invalid_request", "'xyz'"),
        ("/v1/claims/0x12", 422, "invalid_address", "0x12"),
        ("/v1/contributors/0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD/earnings", 422, "invalid_address_checksum", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"),
        ("/v1/no-such-route", 404, "not_found", "/v1/no-such-route"),
    ],
)
def test_error_names_bad_value(client, path, status, code, named):
    response = client.get(path)

    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert named in response.json()["error"]["message"]


def test_unknown_session_proof_is_404(client):
    session_id = uuid.uuid4()

    response = client.get(f"/v1/sessions/{session_id}/proof")

    assert response.status_code == 404
    assert str(session_id) in response.json()["error"]["message"]


def test_invalid_json_body_is_422(client, collector_key):
    response = client.post(
        "/v1/sessions", content=b"{not json", headers={"X-API-Key": collector_key, "Content-Type": "application/json"}
    )

    assert response.status_code == 422
    assert "not valid JSON" in response.json()["error"]["message"]


def test_long_value_is_shortened_in_message(client):
    response = client.get("/v1/epochs/" + "x" * 300)

    message = response.json()["error"]["message"]
    assert response.status_code == 422
    assert "..." in message
    assert len(message) < 300


def test_wrong_method_is_405(client):
    response = client.delete("/v1/epochs")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert "DELETE /v1/epochs" in response.json()["error"]["message"]


def metric_value(text: str, name: str, labels: str = "") -> float:
    pattern = rf"^{re.escape(name)}{re.escape(labels)} (\S+)$"
    match = re.search(pattern, text, re.MULTILINE)
    assert match is not None, f"{name}{labels} not in /metrics"
    return float(match.group(1))


def test_metrics_count_submissions_by_outcome(client, collector_key):
    contributor = Account.create().address
    start = datetime.now(tz=UTC) - timedelta(hours=1)
    scored = session_payload(contributor, start)
    sensitive = session_payload(contributor, start - timedelta(minutes=30), categories=["banking"])
    before = client.get("/metrics").text
    scored_before = metric_value(before, "ledger_session_submissions_total", '{reason="",status="scored"}') if 'status="scored"' in before else 0.0

    client.post("/v1/sessions/batch", json={"sessions": [scored, sensitive]}, headers={"X-API-Key": collector_key})
    client.post("/v1/sessions", json={**scored, "clicks": 1}, headers={"X-API-Key": collector_key})
    after = client.get("/metrics").text

    assert metric_value(after, "ledger_session_submissions_total", '{reason="",status="scored"}') == scored_before + 1
    assert metric_value(after, "ledger_session_submissions_total", '{reason="sensitive_category",status="rejected"}') >= 1
    assert metric_value(after, "ledger_session_submissions_total", '{reason="session_conflict",status="conflict"}') >= 1
    assert metric_value(after, "ledger_sessions", '{status="scored"}') >= 1
    assert metric_value(after, "ledger_epochs", '{status="open"}') == 1
    assert metric_value(after, "ledger_open_epoch") >= 1
    assert 'ledger_http_requests_total{method="POST",route="/v1/sessions/batch",status="200"}' in after
    assert 'ledger_http_request_seconds_bucket{le="0.005",method="POST",route="/v1/sessions"' in after


def test_metrics_label_routes_by_template(client):
    client.get("/v1/epochs/424242")
    client.get("/web/app.js")

    text = client.get("/metrics").text

    assert 'route="/v1/epochs/{number}",status="404"' in text
    assert 'route="/web/{path}",status="200"' in text
    assert "424242" not in text


def test_request_log_omits_client_and_secrets(client, collector_key, settings, caplog):
    auth = sign_in(client, Account.create(), settings)
    token = auth["Authorization"].removeprefix("Bearer ")
    caplog.set_level("INFO")

    client.get("/v1/me/sessions?limit=5", headers=auth)
    client.post("/v1/sessions", json={}, headers={"X-API-Key": collector_key})

    lines = [record.getMessage() for record in caplog.records]
    assert "http.request method=GET route=/v1/me/sessions status=200" in " ".join(lines)
    assert not any(token in line for line in lines)
    assert not any(collector_key in line for line in lines)
    assert not any("testclient" in line for line in lines)


def _drop_connections(api_factory) -> None:
    engine = api_factory.kw["bind"]
    with engine.connect() as connection:
        database = connection.exec_driver_sql("SELECT current_database()").scalar_one()
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        dropped = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s", (database,)
        ).fetchone()[0]
    assert dropped >= 1


def test_dropped_database_connections_answer_503_once(client, api_factory):
    path = f"/v1/sessions/{uuid.uuid4()}/proof"
    assert client.get(path).status_code == 404

    _drop_connections(api_factory)

    # Pooled connections are not pinged: the first request on a dropped one fails cleanly and
    # the pool is replaced, so the client's retry succeeds.
    failed = client.get(path)
    assert failed.status_code == 503
    assert failed.headers["Retry-After"] == "1"
    assert failed.json()["error"]["code"] == "database_unavailable"
    assert client.get(path).status_code == 404


def test_async_read_survives_dropped_connections(client, api_factory, caplog):
    path = f"/v1/contributors/{Account.create().address}/earnings"
    assert client.get(path).status_code == 404

    _drop_connections(api_factory)

    # The coroutine routes check the pool and read again on a fresh connection.
    response = client.get(path)
    # The synchronous pool lost its connections too; later tests of the module need it fresh.
    api_factory.kw["bind"].dispose()

    assert response.status_code == 404
    assert "api.read_pool.connection_lost" in caplog.text


def test_connection_lost_during_copy_is_503(client, collector_key, monkeypatch):
    # COPY raises psycopg's own errors; a lost connection there is the same 503 as elsewhere.
    def lose_connection(*args, **kwargs):
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("api.sessions.submit_with_retry", lose_connection)
    body = {"sessions": [session_payload(Account.create().address, datetime.now(tz=UTC) - timedelta(hours=1))]}

    response = client.post("/v1/sessions/batch", json=body, headers={"X-API-Key": collector_key})

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_unavailable"
