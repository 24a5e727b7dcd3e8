"""A small `ledger demo` through real HTTP, a real anvil and a fresh PostgreSQL database."""

import json
import os
import subprocess
import sys
import uuid

import psycopg
import pytest

from tests.conftest import ADMIN_URL, _database_url

pytestmark = pytest.mark.e2e


@pytest.fixture
def empty_database_url():
    name = f"ledger_demo_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _database_url(name)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_demo_runs_whole_loop(empty_database_url, tmp_path):
    report_path = tmp_path / "report.json"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("LEDGER_", "RPC_URL"))}
    env["DATABASE_URL"] = empty_database_url

    completed = subprocess.run(
        [sys.executable, "-m", "ledger.cli", "demo", "--contributors", "8", "--sessions", "120", "--epochs", "2",
         "--report-json", str(report_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )

    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    report = json.loads(report_path.read_text())
    assert report["failures"] == []
    statuses = [epoch["status"] for epoch in report["epochs"]]
    assert statuses[:2] == ["active", "active"]
    assert report["claims"] >= 4
    outcomes = {(status, reason) for status, reason, _ in report["outcomes"]}
    assert ("rejected", "rate_limited") in outcomes
    assert ("withdrawn", "") in outcomes or ("replayed", "") in outcomes
    assert "all checks passed" in completed.stdout
