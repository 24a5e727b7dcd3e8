"""POST /v1/claims/relay and GET /v1/claims/{address}/typed-data against anvil and PostgreSQL:
a contributor without gas signs, the service's relayer sends the claim."""

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from fastapi.testclient import TestClient
from pydantic import SecretStr
from web3 import Web3

from api.app import create_app
from ledger.chain.anchoring import drive_anchoring
from ledger.chain.indexer import index_claims
from tests.chain.conftest import build_first_epoch

pytestmark = pytest.mark.chain


@pytest.fixture
def relay_env(chain_setup, factory, chain_settings):
    """An active epoch for two contributors who hold no ETH, and an API with a relayer key."""
    alice, bob = Account.create(), Account.create()
    build_first_epoch(factory, chain_settings, addresses=[alice.address, bob.address])
    chain = chain_setup.context()
    drive_anchoring(factory, chain, chain_setup.anchorer, confirmations=1)
    relayer = chain_setup.node.accounts[6]
    settings = chain_settings.model_copy(update={"relayer_private_key": SecretStr(relayer.key.to_0x_hex())})
    app = create_app(settings, factory, chain)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, chain, alice, bob, relayer


def signed_body(client, signer, *, recipient=None, deadline=None) -> dict:
    params = {}
    if recipient:
        params["recipient"] = recipient
    if deadline is not None:
        params["deadline"] = deadline
    response = client.get(f"/v1/claims/{signer.address}/typed-data", params=params)
    assert response.status_code == 200, response.text
    typed = response.json()
    message = typed["message"]
    signable = encode_typed_data(
        full_message={**typed, "message": {**message, "cumulativeAmount": int(message["cumulativeAmount"])}}
    )
    signature = signer.sign_message(signable).signature.to_0x_hex()
    return {
        "account": message["account"],
        "recipient": message["recipient"],
        "cumulative_amount": message["cumulativeAmount"],
        "nonce": message["nonce"],
        "deadline": message["deadline"],
        "signature": signature,
    }


def test_relay_mints_to_chosen_recipient(relay_env, chain_setup, factory):
    client, chain, alice, _, relayer = relay_env
    recipient = Account.create().address
    body = signed_body(client, alice, recipient=recipient)

    response = client.post("/v1/claims/relay", json=body)

    assert response.status_code == 202, response.text
    result = response.json()
    assert result["relayer"] == relayer.address
    assert result["amount"] == body["cumulative_amount"]
    receipt = chain_setup.w3.eth.wait_for_transaction_receipt(result["tx_hash"], poll_latency=0.01)
    assert receipt["status"] == 1
    assert receipt["from"] == relayer.address
    assert chain.token.functions.balanceOf(recipient).call() == int(body["cumulative_amount"])
    assert chain.token.functions.balanceOf(alice.address).call() == 0
    assert chain_setup.w3.eth.get_balance(alice.address) == 0

    index_claims(factory, chain, confirmations=1)
    earnings = client.get(f"/v1/contributors/{alice.address}/earnings").json()
    assert earnings["claimed"] == body["cumulative_amount"]
    assert earnings["claimable"] == "0"

    again = client.post("/v1/claims/relay", json=body)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "nonce_mismatch"


def test_relay_rejects_wrong_signer(relay_env):
    client, _, alice, bob, _ = relay_env
    body = signed_body(client, alice)
    forged = signed_body(client, bob)

    response = client.post("/v1/claims/relay", json={**body, "signature": forged["signature"]})

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_signature"


def test_relay_rejects_changed_amount(relay_env):
    client, _, alice, _, _ = relay_env
    body = signed_body(client, alice)

    response = client.post("/v1/claims/relay", json={**body, "cumulative_amount": str(int(body["cumulative_amount"]) + 1)})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "amount_mismatch"


def test_relay_rejects_expired_signature(relay_env):
    client, chain, alice, _, _ = relay_env
    body = signed_body(client, alice, deadline=chain.block_timestamp() - 1)

    response = client.post("/v1/claims/relay", json=body)

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "signature_expired"


def test_relay_rejects_malformed_signature(relay_env):
    client, _, alice, _, _ = relay_env
    body = signed_body(client, alice)

    for signature in ("0x1234", "0x" + "00" * 65, "not hex"):
        response = client.post("/v1/claims/relay", json={**body, "signature": signature})

        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_signature"


def test_relay_without_key_unavailable(chain_setup, factory, chain_settings):
    app = create_app(chain_settings, factory, chain_setup.context())
    body = {"account": Web3.to_checksum_address("0x" + "11" * 20), "recipient": Web3.to_checksum_address("0x" + "22" * 20),
            "cumulative_amount": "1", "nonce": 0, "deadline": 0, "signature": "0x" + "00" * 65}  # fmt: skip
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/v1/claims/relay", json=body)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "relayer_not_configured"
