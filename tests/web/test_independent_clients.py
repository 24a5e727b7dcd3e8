"""Clients that do not share the service's code accept what the API publishes.

Foundry's `cast` claims with the claim payload, `ledger verify` (in a fresh process) and
`@openzeppelin/merkle-tree` (under node) accept a contribution proof, and the claims tree dump
loads with `StandardMerkleTree.load`.
"""

import json
import os
import subprocess
import sys

import pytest

from ledger import PROJECT_ROOT
from tests.web.conftest import CAST_BINARY

pytestmark = pytest.mark.e2e


def run_cast(*args: str) -> str:
    assert CAST_BINARY.is_file(), f"cast not found at {CAST_BINARY}: run `npm ci`"
    completed = subprocess.run([str(CAST_BINARY), *args], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, f"cast {args[0]} failed: {completed.stderr[-2000:]}"
    return completed.stdout.strip()


def cast_claim(live_stack, payload: dict, private_key: str) -> dict:
    """Send the payload's calldata to its contract with `cast send` and return the receipt."""
    output = run_cast(
        "send", payload["contract"], payload["calldata"],
        "--private-key", private_key,
        "--rpc-url", live_stack.rpc_url,
        "--chain", str(payload["chain_id"]),
        "--json",
    )  # fmt: skip
    return json.loads(output)


def token_balance_by_cast(live_stack, account: str) -> int:
    output = run_cast(
        "call", live_stack.chain.token.address, "balanceOf(address)(uint256)", account,
        "--rpc-url", live_stack.rpc_url,
    )  # fmt: skip
    # cast prints large numbers with a scientific hint after the value: "600000... [6e20]".
    return int(output.split()[0])


def test_deployment_names_contracts(live_stack):
    deployment = live_stack.http.get("/v1/deployment").json()

    assert deployment["chain_id"] == live_stack.chain.chain_id
    assert deployment["distributor"] == live_stack.chain.distributor.address
    assert deployment["token"] == live_stack.chain.token.address
    assert deployment["token_decimals"] == 18


def test_cast_claims_with_payload_twice(live_stack):
    contributor = live_stack.new_contributor()
    key = contributor.key.to_0x_hex()
    live_stack.submit_sessions(contributor.address, 2)
    live_stack.anchor_open_epoch()
    first = live_stack.http.get(f"/v1/claims/{contributor.address}").json()

    first_receipt = cast_claim(live_stack, first, key)

    assert first_receipt["status"] == "0x1"
    assert int(first["claimable"]) == int(first["cumulative_amount"]) > 0
    assert token_balance_by_cast(live_stack, contributor.address) == int(first["cumulative_amount"])

    live_stack.submit_sessions(contributor.address, 1)
    live_stack.anchor_open_epoch()
    live_stack.index_claims()
    second = live_stack.http.get(f"/v1/claims/{contributor.address}").json()

    assert second["claimed"] == first["cumulative_amount"]
    assert int(second["claimable"]) == int(second["cumulative_amount"]) - int(first["cumulative_amount"]) > 0

    second_receipt = cast_claim(live_stack, second, key)

    assert second_receipt["status"] == "0x1"
    assert token_balance_by_cast(live_stack, contributor.address) == int(second["cumulative_amount"])
    live_stack.index_claims()
    earnings = live_stack.http.get(f"/v1/contributors/{contributor.address}/earnings").json()
    assert earnings["claimed"] == second["cumulative_amount"]
    assert earnings["claimable"] == "0"


def test_cast_rejected_claim_mints_nothing(live_stack):
    contributor = live_stack.new_contributor()
    live_stack.submit_sessions(contributor.address, 1)
    live_stack.anchor_open_epoch()
    payload = live_stack.http.get(f"/v1/claims/{contributor.address}").json()
    cast_claim(live_stack, payload, contributor.key.to_0x_hex())

    completed = subprocess.run(
        [str(CAST_BINARY), "send", payload["contract"], payload["calldata"],
         "--private-key", contributor.key.to_0x_hex(), "--rpc-url", live_stack.rpc_url],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip

    assert completed.returncode != 0
    assert token_balance_by_cast(live_stack, contributor.address) == int(payload["cumulative_amount"])


def test_contribution_proof_verifies_everywhere(live_stack, run_oz, tmp_path):
    contributor = live_stack.new_contributor(gas_money=False)
    [session, *_] = live_stack.submit_sessions(contributor.address, 2)
    epoch = live_stack.anchor_open_epoch()
    document = live_stack.http.get(f"/v1/sessions/{session['session_id']}/proof").json()
    proof_path = tmp_path / "proof.json"
    proof_path.write_text(json.dumps(document))
    env = {key: value for key, value in os.environ.items() if not key.startswith(("LEDGER_", "RPC_URL", "DATABASE_URL"))}

    verified = subprocess.run(
        [sys.executable, "-m", "ledger.cli", "verify", str(proof_path), "--rpc-url", live_stack.rpc_url],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.strip().splitlines()[-1] == "VALID"
    assert document["epoch"] == epoch
    assert document["value"][2] == contributor.address
    assert run_oz("verify", document) is True


def test_tampered_proof_fails_everywhere(live_stack, run_oz, tmp_path):
    contributor = live_stack.new_contributor(gas_money=False)
    [session] = live_stack.submit_sessions(contributor.address, 1)
    live_stack.anchor_open_epoch()
    document = live_stack.http.get(f"/v1/sessions/{session['session_id']}/proof").json()
    document["value"][3] = str(int(document["value"][3]) + 1)
    proof_path = tmp_path / "tampered.json"
    proof_path.write_text(json.dumps(document))

    verified = subprocess.run(
        [sys.executable, "-m", "ledger.cli", "verify", str(proof_path), "--rpc-url", live_stack.rpc_url],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert verified.returncode == 1, verified.stdout + verified.stderr
    assert run_oz("verify", document) is False


def test_claims_tree_dump_loads_in_openzeppelin(live_stack, run_oz):
    contributor = live_stack.new_contributor(gas_money=False)
    live_stack.submit_sessions(contributor.address, 1)
    epoch = live_stack.anchor_open_epoch()
    dump = live_stack.http.get(f"/v1/epochs/{epoch}/claims-tree").json()
    anchored = live_stack.http.get(f"/v1/epochs/{epoch}").json()
    payload = live_stack.http.get(f"/v1/claims/{contributor.address}").json()

    loaded = run_oz("load", dump)

    assert dump["format"] == "standard-v1"
    assert loaded["root"] == anchored["claims_root"] == payload["root"]
    assert loaded["root"] == "0x" + live_stack.chain.distributor.functions.epochs(epoch).call()[0].hex()
    index = next(i for i, entry in enumerate(dump["values"]) if entry["value"][0] == contributor.address)
    assert loaded["proofs"][index] == payload["proof"]
    assert run_oz("verify", dump) is True
