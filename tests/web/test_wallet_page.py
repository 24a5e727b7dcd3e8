"""The contributor page in headless Chromium, with a test wallet that signs and sends to anvil."""

import json
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from ledger import PROJECT_ROOT
from ledger.models import AccessToken, ConsentEvent, Session

pytestmark = pytest.mark.e2e

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
HARNESS = Path(__file__).with_name("wallet_page.mjs")


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.is_file():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's package with `apt-get install -y chromium`")
    return CHROMIUM


def test_page_serves_its_assets(live_stack):
    page = live_stack.http.get("/")
    script = live_stack.http.get("/web/app.js")

    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")


def test_wallet_signs_in_deletes_and_claims(live_stack, chromium, artifacts_dir):
    wallet = live_stack.new_contributor()
    payloads = live_stack.submit_sessions(wallet.address, 3)
    live_stack.submit_sessions(live_stack.new_contributor(gas_money=False).address, 2)
    epoch = live_stack.anchor_open_epoch()
    payload = live_stack.http.get(f"/v1/claims/{wallet.address}").json()
    deleted_id = payloads[1]["session_id"]

    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LEDGER_BASE_URL": live_stack.base_url,
        "LEDGER_RPC_URL": live_stack.rpc_url,
        "TEST_WALLET_KEY": wallet.key.to_0x_hex(),
        "DELETE_SESSION_ID": deleted_id,
        "ARTIFACTS_DIR": str(artifacts_dir),
        "CHROMIUM_PATH": str(chromium),
    }
    completed = subprocess.run(
        [shutil.which("node") or "node", str(HARNESS)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-6000:]
    page_report = json.loads(completed.stdout.strip().splitlines()[-1])

    assert payload["epoch"] == epoch
    assert page_report["address"] == wallet.address
    assert wallet.address in page_report["walletState"]
    assert page_report["sessionsRange"] == "1-3 of 3"
    assert page_report["pausedText"].startswith("Sharing is paused")
    assert "withdrawn" in page_report["deletedRow"]
    assert page_report["walletRequests"].count("personal_sign") == 1
    assert page_report["walletRequests"].count("eth_sendTransaction") == 1
    assert page_report["sessionsHidden"] is True

    receipt = live_stack.w3.eth.get_transaction_receipt(page_report["claimTransaction"])
    balance = live_stack.chain.token.functions.balanceOf(wallet.address).call()
    assert receipt["status"] == 1
    assert receipt["from"] == wallet.address
    assert balance == int(payload["cumulative_amount"])
    assert balance > 0
    assert page_report["walletBalance"] == f"{balance} base units"
    assert page_report["claimableAfter"] == "0 base units"
    assert live_stack.chain.distributor.functions.claimed(wallet.address).call() == balance

    with live_stack.factory() as db:
        statuses = {str(row.session_id): row.status.value for row in db.scalars(select(Session).where(Session.contributor == wallet.address))}
        consent = [row.sharing for row in db.scalars(select(ConsentEvent).where(ConsentEvent.contributor == wallet.address).order_by(ConsentEvent.effective_at))]
        tokens = list(db.scalars(select(AccessToken).where(AccessToken.contributor == wallet.address)))
    assert statuses[deleted_id] == "withdrawn"
    assert sorted(statuses.values()) == ["scored", "scored", "withdrawn"]
    assert consent[-2:] == [False, True]
    assert len(tokens) == 1
    assert tokens[0].expires_at <= datetime.now(tz=UTC), "sign-out left the bearer token valid"

    live_stack.index_claims()
    earnings = live_stack.http.get(f"/v1/contributors/{wallet.address}/earnings").json()
    assert earnings["claimed"] == str(balance)
    assert earnings["claimable"] == "0"

    for step in ("1-connected", "2-signed-in", "3-session-deleted", "4-claimed"):
        assert (artifacts_dir / f"wallet-page-{step}.png").stat().st_size > 0
