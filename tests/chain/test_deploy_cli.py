"""`ledger contracts deploy` as a user runs it: against an RPC URL, with the deployer key in an
encrypted keystore file made by eth-account, or in the environment."""

import json
import os
import subprocess
import sys

import pytest
from eth_account import Account
from web3 import Web3

from ledger import PROJECT_ROOT
from ledger.chain.contracts import Deployment, distributor_contract, token_contract

pytestmark = pytest.mark.chain

ANCHORER_ROLE = Web3.keccak(text="ANCHORER_ROLE")


def run_deploy(arguments: list[str], environment: dict[str, str], workdir) -> subprocess.CompletedProcess[str]:
    base = {name: value for name, value in os.environ.items() if not name.startswith("LEDGER_") and name != "RPC_URL"}
    return subprocess.run(
        [sys.executable, "-m", "ledger.cli", "contracts", "deploy", *arguments],
        env={**base, **environment, "PYTHONPATH": str(PROJECT_ROOT)},
        cwd=workdir,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )


def test_deploy_with_keystore(anvil, tmp_path):
    deployer = anvil.accounts[8]
    keystore = tmp_path / "deployer.json"
    keystore.write_text(json.dumps(Account.encrypt(deployer.key, "correct horse")))
    anchorer = Account.create().address
    out = tmp_path / "deployment.json"

    result = run_deploy(
        ["--rpc-url", anvil.url, "--keystore", str(keystore), "--anchorer", anchorer, "--out", str(out)],
        {"LEDGER_ANCHORER_KEYSTORE_PASSWORD": "correct horse", "LEDGER_CHALLENGE_PERIOD_SECONDS": "600"},
        tmp_path,
    )

    assert result.returncode == 0, result.stderr
    assert f"deploying from {deployer.address} on chain 31337" in result.stdout
    deployment = Deployment.load(out)
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    distributor = distributor_contract(w3, deployment.distributor_address).functions
    assert distributor.hasRole(ANCHORER_ROLE, anchorer).call()
    assert distributor.hasRole(b"\x00" * 32, deployer.address).call()
    assert distributor.challengePeriod().call() == 600
    assert token_contract(w3, deployment.token_address).functions.minter().call() == deployment.distributor_address
    assert deployer.key.hex() not in result.stdout + result.stderr


def test_deploy_wrong_keystore_password(anvil, tmp_path):
    keystore = tmp_path / "deployer.json"
    keystore.write_text(json.dumps(Account.encrypt(anvil.accounts[8].key, "correct horse")))

    result = run_deploy(
        ["--rpc-url", anvil.url, "--keystore", str(keystore), "--out", str(tmp_path / "d.json")],
        {"LEDGER_ANCHORER_KEYSTORE_PASSWORD": "wrong"},
        tmp_path,
    )

    assert result.returncode == 2
    assert "cannot decrypt keystore" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "d.json").exists()


def test_deploy_unfunded_key_from_environment(anvil, tmp_path):
    penniless = Account.create()

    result = run_deploy(
        ["--rpc-url", anvil.url, "--out", str(tmp_path / "d.json")],
        {"LEDGER_ANCHORER_PRIVATE_KEY": penniless.key.to_0x_hex()},
        tmp_path,
    )

    assert result.returncode == 1
    assert "InsufficientFunds" in result.stderr
    assert "Traceback" not in result.stderr
