"""The worker as a real process: killed with SIGKILL at each step of anchoring and run again,
three at once, started before its node, and against the wrong chain.

The crash tests run `ledger worker --once` against a real anvil and PostgreSQL. The variable
LEDGER_TEST_CRASH_AT names the point where the process kills itself, and the rerun must anchor
exactly once.
"""

import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import select

from ledger import PROJECT_ROOT
from ledger.chain.crashpoints import CRASH_ENV
from ledger.chain.devnet import start_anvil
from ledger.models import AnchorTransaction, AnchorTxStatus, EpochStatus
from tests.chain.conftest import build_first_epoch, deploy, load_epoch, run_worker_once, worker_environment

pytestmark = pytest.mark.chain


def anchor_transactions(factory) -> list[AnchorTransaction]:
    with factory() as db:
        return list(db.scalars(select(AnchorTransaction).order_by(AnchorTransaction.created_at)))


@pytest.mark.parametrize("point", ["anchor.before_send", "anchor.after_send", "anchor.after_record"])
def test_worker_killed_then_rerun_anchors_once(point, chain_setup, factory, ledger_database, chain_settings, tmp_path):
    build_first_epoch(factory, chain_settings)
    built = load_epoch(factory, 1)
    environment = worker_environment(chain_setup, ledger_database)
    anchorer = chain_setup.anchorer.address
    # The anchorer's nonce carries over from earlier tests on the same anvil.
    first_nonce = chain_setup.w3.eth.get_transaction_count(anchorer)

    crashed = run_worker_once({**environment, CRASH_ENV: point}, tmp_path)

    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert f"test.crash point={point}" in crashed.stderr
    [signed] = anchor_transactions(factory)
    assert signed.nonce == first_nonce
    if point == "anchor.before_send":
        assert signed.status == AnchorTxStatus.SIGNED
        assert load_epoch(factory, 1).status == EpochStatus.BUILT
        assert chain_setup.w3.eth.get_transaction_count(anchorer, "pending") == first_nonce
    elif point == "anchor.after_send":
        assert signed.status == AnchorTxStatus.SIGNED
        assert load_epoch(factory, 1).status == EpochStatus.BUILT
        assert chain_setup.w3.eth.get_transaction_count(anchorer, "pending") == first_nonce + 1
    else:
        assert signed.status == AnchorTxStatus.SENT
        assert load_epoch(factory, 1).status == EpochStatus.SUBMITTED

    rerun = run_worker_once(environment, tmp_path)

    assert rerun.returncode == 0, rerun.stderr
    epoch = load_epoch(factory, 1)
    assert epoch.status == EpochStatus.ACTIVE
    events = chain_setup.anchored_events()
    assert len(events) == 1
    assert events[0]["args"]["epoch"] == 1
    assert events[0]["args"]["claimsRoot"] == built.claims_root
    assert events[0]["args"]["contributionsRoot"] == built.contributions_root
    assert events[0]["args"]["totalEntitled"] == built.total_entitled
    assert bytes(events[0]["transactionHash"]) == signed.tx_hash
    assert epoch.anchor_tx_hash == signed.tx_hash
    assert chain_setup.w3.eth.get_transaction_count(anchorer) == first_nonce + 1
    [mined] = anchor_transactions(factory)
    assert mined.status == AnchorTxStatus.MINED


def test_worker_rejects_chain_id_mismatch(chain_setup, ledger_database, tmp_path):
    environment = worker_environment(chain_setup, ledger_database, LEDGER_CHAIN_ID="11155111")

    result = run_worker_once(environment, tmp_path)

    assert result.returncode == 2
    assert "serves chain id 31337 but 11155111 is configured" in result.stderr
    assert "Traceback" not in result.stderr


def test_concurrent_workers_anchor_once(chain_setup, factory, ledger_database, chain_settings, tmp_path):
    build_first_epoch(factory, chain_settings)
    environment = worker_environment(chain_setup, ledger_database)
    command = [sys.executable, "-m", "ledger.cli", "worker", "--once"]
    process_environment = {**environment, "PYTHONPATH": str(PROJECT_ROOT)}

    workers = [
        subprocess.Popen(command, env=process_environment, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outputs = [worker.communicate(timeout=120)[1] for worker in workers]

    assert [worker.returncode for worker in workers] == [0, 0, 0], outputs
    assert load_epoch(factory, 1).status == EpochStatus.ACTIVE
    assert len(chain_setup.anchored_events()) == 1
    assert len(anchor_transactions(factory)) == 1


def test_worker_waits_for_node_to_start(factory, ledger_database, chain_settings, tmp_path):
    # Deploy on a node, stop it, and start the long-running worker while nothing listens.
    state = tmp_path / "anvil-state.json"
    node = start_anvil(state_path=state)
    setup = deploy(node, tmp_path, challenge_period=0)
    build_first_epoch(factory, chain_settings)
    node.stop()
    environment = worker_environment(setup, ledger_database, LEDGER_SCHEDULER_INTERVAL_SECONDS="0.2")
    log = (tmp_path / "worker.log").open("w+")
    worker = subprocess.Popen(
        [sys.executable, "-m", "ledger.cli", "worker"],
        env={**environment, "PYTHONPATH": str(PROJECT_ROOT)}, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    try:
        wait_until(lambda: "worker.chain.unreachable" in (tmp_path / "worker.log").read_text(), "the first connection retry")
        assert worker.poll() is None

        node = start_anvil(port=node.port, state_path=state)
        wait_until(lambda: load_epoch(factory, 1).status == EpochStatus.ACTIVE, "epoch 1 to become active")

        assert len(setup.anchored_events()) == 1
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        node.stop()
        log.close()
    assert worker.returncode == 0
    assert "Traceback" not in (tmp_path / "worker.log").read_text()


def wait_until(condition, description: str, *, seconds: float = 60.0) -> None:
    """Poll `condition` every 0.1 s; fail naming `description` if it is still false after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {seconds} s waiting for {description}"
        time.sleep(0.1)
