"""The `ledger` command line as a user runs it: exit codes and messages."""

import json
import subprocess
import sys
import uuid

import psycopg

from tests.conftest import ADMIN_URL, _database_url


def run_ledger(*args, env=None):
    return subprocess.run([sys.executable, "-m", "ledger.cli", *args], capture_output=True, text=True, env=env, timeout=120)


def test_serve_refuses_unmigrated_database():
    name = f"ledger_cli_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        completed = run_ledger("serve", "--port", "1", env={"DATABASE_URL": _database_url(name), "PATH": "/usr/bin:/bin"})
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    assert completed.returncode != 0
    assert "run `ledger migrate` first" in completed.stderr


def test_verify_rejects_malformed_proof_file(tmp_path):
    proof = tmp_path / "proof.json"
    proof.write_text(json.dumps({"kind": "contribution", "epoch": "one"}))

    completed = run_ledger("verify", str(proof))

    assert completed.returncode == 2
    assert "cannot read proof" in completed.stderr


def test_verify_missing_file_is_clear(tmp_path):
    completed = run_ledger("verify", str(tmp_path / "absent.json"))

    assert completed.returncode == 2
    assert "absent.json" in completed.stderr


def test_score_explain_rejects_non_uuid():
    completed = run_ledger("score", "explain", "not-a-uuid", env={"DATABASE_URL": ADMIN_URL, "PATH": "/usr/bin:/bin"})

    assert completed.returncode == 2
    assert "'not-a-uuid' is not a UUID" in completed.stderr
