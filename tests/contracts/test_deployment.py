"""deploy_contracts and the Deployment record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from web3 import Web3

import ledger.chain.contracts as contracts_module
from ledger.chain.contracts import Deployment, DeploymentError, deploy_contracts, load_artifact

pytestmark = pytest.mark.chain


def test_deployment_record_matches_chain(w3: Web3, deployment: Deployment):
    assert deployment.chain_id == w3.eth.chain_id
    token_receipt = w3.eth.get_transaction_receipt(deployment.token_tx_hash)
    distributor_receipt = w3.eth.get_transaction_receipt(deployment.distributor_tx_hash)
    assert token_receipt["contractAddress"] == deployment.token_address
    assert distributor_receipt["contractAddress"] == deployment.distributor_address
    assert deployment.deploy_block == token_receipt["blockNumber"] <= distributor_receipt["blockNumber"]
    assert len(w3.eth.get_code(deployment.distributor_address)) > 0


def test_deployed_runtime_code_matches_artifact(w3: Web3, deployment: Deployment):
    # The artifact leaves zeros where the constructor writes immutables (token, emission, challenge
    # period), so the deployed code may differ from it only at bytes that are zero in the artifact.
    code = bytes(w3.eth.get_code(deployment.distributor_address))
    artifact_code = bytes.fromhex(load_artifact("RewardDistributor")["deployedBytecode"][2:])

    assert len(code) == len(artifact_code)
    differing = [index for index in range(len(code)) if code[index] != artifact_code[index]]
    assert differing, "expected immutables in the deployed code"
    assert all(artifact_code[index] == 0 for index in differing)


def test_deployment_json_round_trip(tmp_path: Path, deployment: Deployment):
    text = deployment.to_json()
    assert text.endswith("}\n")
    assert json.loads(text)["format"] == 1
    assert Deployment.from_json(text) == deployment

    path = tmp_path / "deployment.json"
    deployment.save(path)
    assert Deployment.load(path) == deployment


def test_deployment_json_rejects_bad_records(deployment: Deployment):
    record = json.loads(deployment.to_json())

    with pytest.raises(ValueError, match="format 2 is not supported"):
        Deployment.from_json(json.dumps({**record, "format": 2}))
    with pytest.raises(ValueError, match="missing distributor_address"):
        Deployment.from_json(json.dumps({k: v for k, v in record.items() if k != "distributor_address"}))
    with pytest.raises(ValueError, match="invalid token_address"):
        Deployment.from_json(json.dumps({**record, "token_address": "0x1234"}))
    with pytest.raises(ValueError, match="invalid deploy_block"):
        Deployment.from_json(json.dumps({**record, "deploy_block": -1}))


def test_deploy_rejects_invalid_arguments(w3: Web3, roles):
    valid = {
        "admin": roles.admin.address,
        "anchorer": roles.anchorer.address,
        "guardian": roles.guardian.address,
        "emission_per_epoch": 10**18,
        "challenge_period": 0,
    }
    nonce_before = w3.eth.get_transaction_count(roles.admin.address)

    with pytest.raises(ValueError, match="anchorer must be a non-zero address"):
        deploy_contracts(w3, roles.admin, **{**valid, "anchorer": "0x" + "00" * 20})
    with pytest.raises(ValueError, match="emission_per_epoch must be positive"):
        deploy_contracts(w3, roles.admin, **{**valid, "emission_per_epoch": 0})
    with pytest.raises(ValueError, match="challenge_period must be between"):
        deploy_contracts(w3, roles.admin, **{**valid, "challenge_period": -1})
    assert w3.eth.get_transaction_count(roles.admin.address) == nonce_before


def test_deploy_detects_wrong_minter(w3: Web3, roles, monkeypatch: pytest.MonkeyPatch):
    # Stands in for another transaction from the deployer between the two deployments, which
    # moves the distributor away from the address the token was given as minter.
    wrong_minter = roles.outsider.address
    monkeypatch.setattr(contracts_module, "get_create_address", lambda sender, nonce: wrong_minter)
    snapshot_id = w3.provider.make_request("evm_snapshot", [])["result"]
    try:
        with pytest.raises(DeploymentError, match=f"has minter {wrong_minter}, but the distributor was deployed at"):
            deploy_contracts(
                w3,
                roles.admin,
                admin=roles.admin.address,
                anchorer=roles.anchorer.address,
                guardian=roles.guardian.address,
                emission_per_epoch=10**18,
                challenge_period=0,
            )
    finally:
        w3.provider.make_request("evm_revert", [snapshot_id])
