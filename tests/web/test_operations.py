"""Readiness and metrics of a service with a chain: anchoring state and claim indexer lag."""

import re

import pytest

pytestmark = pytest.mark.e2e


def metric(text: str, sample: str) -> float:
    match = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.MULTILINE)
    assert match is not None, f"{sample} not in /metrics"
    return float(match.group(1))


def test_readyz_checks_database_and_chain(live_stack):
    response = live_stack.http.get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "chain": "ok"}


def test_metrics_report_anchoring_and_indexer(live_stack):
    contributor = live_stack.new_contributor(gas_money=False)
    live_stack.submit_sessions(contributor.address, 1)
    epoch = live_stack.anchor_open_epoch()
    live_stack.index_claims()

    text = live_stack.http.get("/metrics").text

    assert metric(text, "ledger_latest_active_epoch") >= epoch
    assert metric(text, "ledger_latest_anchored_epoch") >= epoch
    assert metric(text, "ledger_open_epoch") == epoch + 1
    assert metric(text, 'ledger_epochs{status="active"}') >= 1
    assert metric(text, 'ledger_anchor_transactions{status="mined"}') >= 1
    assert metric(text, "ledger_claim_indexer_block") >= 1
    assert metric(text, "ledger_claim_indexer_lag_blocks") == 0
