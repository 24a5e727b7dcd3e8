"""The committed contract artifacts match a fresh build of contracts/src (node contracts/build.mjs)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from ledger import PROJECT_ROOT

BUILD_SCRIPT = PROJECT_ROOT / "contracts" / "build.mjs"
ARTIFACTS_DIR = PROJECT_ROOT / "contracts" / "artifacts"
CONTRACT_NAMES = ("OwnershipToken", "RewardDistributor")


def run_build(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(BUILD_SCRIPT), *args], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=180
    )


def test_committed_artifacts_are_up_to_date():
    result = run_build("--check")

    assert result.returncode == 0, f"build.mjs --check failed:\n{result.stdout}{result.stderr}"
    assert "artifacts up to date" in result.stdout


def test_check_reports_stale_artifacts(tmp_path: Path):
    copy = tmp_path / "artifacts"
    shutil.copytree(ARTIFACTS_DIR, copy)
    distributor_file = copy / "RewardDistributor.json"
    artifact = json.loads(distributor_file.read_text())
    artifact["bytecode"] = artifact["bytecode"][:-2] + ("00" if artifact["bytecode"][-2:] != "00" else "01")
    distributor_file.write_text(json.dumps(artifact, indent=2) + "\n")
    (copy / "standard-input.json").unlink()

    result = run_build("--check", "--artifacts-dir", str(copy))

    assert result.returncode == 1, result.stdout + result.stderr
    assert "stale: " in result.stderr
    assert "RewardDistributor.json differs from a fresh build" in result.stderr
    assert "missing: " in result.stderr
    assert "standard-input.json" in result.stderr
    assert "OwnershipToken.json" not in result.stderr
    assert not (copy / "standard-input.json").exists(), "--check must not write artifacts"


def test_build_rejects_unknown_argument():
    result = run_build("--chek")

    assert result.returncode == 1
    assert "unknown argument: --chek" in result.stderr


def test_artifacts_have_expected_fields():
    for name in CONTRACT_NAMES:
        text = (ARTIFACTS_DIR / f"{name}.json").read_text()
        artifact = json.loads(text)

        assert text.endswith("}\n")
        assert list(artifact) == ["contractName", "sourceName", "compiler", "abi", "bytecode", "deployedBytecode"]
        assert artifact["contractName"] == name
        assert artifact["sourceName"] == f"src/{name}.sol"
        assert artifact["compiler"]["version"].startswith("0.8.28+commit.")
        assert artifact["compiler"]["evmVersion"] == "cancun"
        assert artifact["compiler"]["optimizer"]["enabled"] is True
        assert re.fullmatch("0x[0-9a-f]{1000,}", artifact["bytecode"])
        assert re.fullmatch("0x[0-9a-f]{1000,}", artifact["deployedBytecode"])


def test_standard_input_is_self_contained():
    standard_input = json.loads((ARTIFACTS_DIR / "standard-input.json").read_text())
    sources = standard_input["sources"]

    assert standard_input["language"] == "Solidity"
    assert list(sources) == sorted(sources)
    assert "src/RewardDistributor.sol" in sources
    assert "src/libraries/ErrorsLib.sol" in sources
    assert "@openzeppelin/contracts/token/ERC20/ERC20.sol" in sources
    for name, source in sources.items():
        assert set(source) == {"content"}, f"{name} is not inlined"
        on_disk = PROJECT_ROOT / ("contracts/" + name if name.startswith("src/") else "node_modules/" + name)
        assert source["content"] == on_disk.read_text(), f"{name} differs from {on_disk}"
