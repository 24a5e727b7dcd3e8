"""Sign-out ends a bearer token; the deployment record needs a chain."""

import pytest
from eth_account import Account

from tests.api.test_api import sign_in


def test_sign_out_ends_token(client, settings):
    auth = sign_in(client, Account.create(), settings)

    signed_out = client.post("/v1/auth/sign-out", headers=auth)
    after = client.get("/v1/me/sessions", headers=auth)
    again = client.post("/v1/auth/sign-out", headers=auth)

    assert signed_out.status_code == 204
    assert after.status_code == 401
    assert after.json()["error"]["code"] == "invalid_token"
    assert again.status_code == 401


def test_sign_out_without_token_is_401(client):
    response = client.post("/v1/auth/sign-out")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_token"


@pytest.mark.parametrize(
    "path", ["/v1/deployment", "/v1/claims/0x52908400098527886E0F7030069857D2E4169EE7", "/v1/claims/0x52908400098527886E0F7030069857D2E4169EE7/typed-data"]
)
def test_chain_routes_without_chain_are_503(client, path):
    response = client.get(path)

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "chain_not_configured"
    assert "RPC_URL" in response.json()["error"]["message"]
