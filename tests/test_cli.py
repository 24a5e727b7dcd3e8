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


def _environment(**values):
    return {"PATH": "/usr/bin:/bin", **values}


def test_invalid_setting_names_variable():
    completed = run_ledger("check", env=_environment(DATABASE_URL=ADMIN_URL, LEDGER_CONFIRMATIONS="abc"))

    assert completed.returncode == 2
    assert "LEDGER_CONFIRMATIONS='abc' is invalid" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_check_unmigrated_database():
    name = f"ledger_cli_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        completed = run_ledger("check", env=_environment(DATABASE_URL=_database_url(name)))
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    assert completed.returncode == 2
    assert "run `ledger migrate` first" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_check_missing_database():
    name = f"ledger_cli_absent_{uuid.uuid4().hex[:8]}"

    completed = run_ledger("check", env=_environment(DATABASE_URL=_database_url(name)))

    assert completed.returncode == 2
    assert f'database "{name}" does not exist' in completed.stderr
    assert "check DATABASE_URL" in completed.stderr


def _proof_file(tmp_path, distributor=None):
    from ledger.merkle import ContributionProof, contributions_tree  # noqa: PLC0415

    entry = (uuid.uuid4(), bytes(range(32)), "0x52908400098527886E0F7030069857D2E4169EE7", 1500)
    tree = contributions_tree([entry])
    proof = ContributionProof(
        epoch=1,
        root=tree.root,
        session_id=entry[0],
        content_hash=entry[1],
        contributor=entry[2],
        points=entry[3],
        proof=tuple(tree.proof(0)),
        distributor=distributor,
        chain_id=31337 if distributor else None,
    )
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(proof.to_dict()))
    return path


def test_verify_missing_distributor(tmp_path):
    completed = run_ledger("verify", str(_proof_file(tmp_path)), "--rpc-url", "http://127.0.0.1:1")

    assert completed.returncode == 2
    assert "pass --distributor ADDRESS" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_verify_unreachable_node(tmp_path):
    distributor = "0x" + "11" * 20
    completed = run_ledger("verify", str(_proof_file(tmp_path, distributor)), "--rpc-url", "http://127.0.0.1:1")

    assert completed.returncode == 2
    assert completed.stderr.splitlines()[-1].startswith("error: ")
    assert "Traceback" not in completed.stderr


def test_serve_rejects_malformed_collector_key():
    from tests.conftest import migrated_database  # noqa: PLC0415

    with migrated_database("ledger_cli_key") as url:
        completed = run_ledger(
            "serve", "--port", "1", env=_environment(DATABASE_URL=url, LEDGER_COLLECTOR_API_KEY="hello")
        )

    assert completed.returncode == 2
    assert "LEDGER_COLLECTOR_API_KEY is not an API key" in completed.stderr
    assert "hello" not in completed.stderr


def test_policy_publish_invalid_effective_from(tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text("{}")

    completed = run_ledger(
        "policy", "publish", str(rules), "--effective-from", "yesterday", env=_environment(DATABASE_URL=ADMIN_URL)
    )

    assert completed.returncode == 2
    assert "--effective-from 'yesterday' is not an RFC 3339 instant" in completed.stderr
