"""The README's shell commands to check earnings, claim and verify a proof work as written."""

import os
import re
import subprocess

import pytest

from ledger import PROJECT_ROOT

pytestmark = pytest.mark.e2e

SECTION = "### Check earnings, claim and verify a proof"


def readme_commands() -> str:
    """Return the first `sh` block after the README section heading."""
    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index(SECTION) :]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match is not None, f"no sh block after {SECTION!r} in README.md"
    return match.group(1)


def with_values(script: str, values: dict[str, str]) -> str:
    """Replace the value of each `NAME=...` line the block starts with."""
    for name, value in values.items():
        script, count = re.subn(rf"^{name}=\S+", f"{name}={value}", script, count=1, flags=re.MULTILINE)
        assert count == 1, f"README block sets no {name}"
    return script


def test_readme_commands_claim_and_verify(live_stack, tmp_path):
    contributor = live_stack.new_contributor()
    [session, *_] = live_stack.submit_sessions(contributor.address, 2)
    live_stack.anchor_open_epoch()
    expected = live_stack.http.get(f"/v1/claims/{contributor.address}").json()["cumulative_amount"]
    script = with_values(
        readme_commands(),
        {"API": live_stack.base_url, "RPC": live_stack.rpc_url, "ADDRESS": contributor.address, "SESSION_ID": session["session_id"]},
    )
    # The commands use paths relative to the repository root and write claim.json and
    # proof.json, so they run in a scratch folder that links the installed tools.
    (tmp_path / "node_modules").symlink_to(PROJECT_ROOT / "node_modules")
    (tmp_path / ".venv").symlink_to(PROJECT_ROOT / ".venv")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("LEDGER_", "RPC_URL", "DATABASE_URL"))}
    env["YOUR_KEY"] = contributor.key.to_0x_hex()

    completed = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )

    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    output = completed.stdout
    assert f'"address":"{contributor.address}"' in output
    assert re.search(rf"^{expected}( \[[^\]]+\])?$", output, re.MULTILINE), "cast call printed no balance equal to the claim"
    assert "\nVALID\n" in output
    assert output.rstrip().endswith("true")
    assert live_stack.chain.token.functions.balanceOf(contributor.address).call() == int(expected)


def test_readme_session_example_is_a_valid_submission():
    from ledger.intake.schemas import SessionSubmission  # noqa: PLC0415

    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"/v1/sessions -H .*?-d '(\{.*?\})'", text, re.DOTALL)
    assert match is not None, "README.md has no session example for POST /v1/sessions"

    submission = SessionSubmission.model_validate_json(match.group(1))

    assert submission.client_version == "extension/1.4.2"
