"""The page's Keccak-256, EIP-55 and amount helpers against eth-utils, run under node."""

import json
import random
import shutil
import subprocess
from pathlib import Path

from eth_account import Account
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address

SCRIPT = Path(__file__).with_name("eth_helpers.mjs")


def run_helpers(document: dict) -> dict:
    completed = subprocess.run(
        [shutil.which("node") or "node", "--disable-warning=MODULE_TYPELESS_PACKAGE_JSON", str(SCRIPT)],
        input=json.dumps(document),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def test_helpers_match_eth_utils():
    rng = random.Random(3)
    # Lengths around the 136-byte rate cover one- and two-block inputs and the padding edge.
    texts = ["", "abc", "é✓"] + ["x" * length for length in (1, 135, 136, 137, 272, 1000)]
    texts += [rng.randbytes(rng.randrange(300)).hex() for _ in range(20)]
    addresses = [Account.create().address for _ in range(50)]
    signatures = ["balanceOf(address)", "claimed(address)", "claim(address,uint256,bytes32[])"]

    output = run_helpers(
        {
            "texts": texts,
            "addresses": [address.lower() for address in addresses],
            "signatures": signatures,
            "amounts": [],
        }
    )

    assert output["keccak"] == ["0x" + keccak(text=text).hex() for text in texts]
    assert output["checksummed"] == [to_checksum_address(address) for address in addresses]
    assert output["selectors"] == ["0x" + function_signature_to_4byte_selector(s).hex() for s in signatures]


def test_checksum_rejects_bad_addresses():
    address = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # EIP-55's first example
    flipped = address[:2] + address[2:].swapcase()

    upper = "0x" + address[2:].upper()
    document = {"texts": [], "addresses": [address, flipped, "0x1234", upper], "signatures": [], "amounts": []}

    output = run_helpers(document)

    assert output["checksummed"][0] == address
    assert "wrong EIP-55 checksum" in output["checksummed"][1]["error"]
    assert "expected 0x and 40 hex digits" in output["checksummed"][2]["error"]
    assert output["checksummed"][3] == address


def test_amounts_format_in_whole_tokens():
    amounts = ["0", "1", str(10**18), str(1234 * 10**18 + 567_890_123_456_789_012), str(10**12), str(10**12 - 1)]

    output = run_helpers({"texts": [], "addresses": [], "signatures": [], "amounts": amounts})

    assert output["formatted"] == ["0", "< 0.000001", "1", "1,234.56789", "0.000001", "< 0.000001"]
