"""Fixtures for the Merkle tree tests: a runner for the OpenZeppelin reference script."""

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

OZ_SCRIPT = Path(__file__).with_name("oz_tree.mjs")

OzRunner = Callable[..., Any]


@pytest.fixture(scope="session")
def run_oz() -> OzRunner:
    """Return a function that sends JSON to `oz_tree.mjs` in a mode and returns its JSON output.

    Node is a development requirement of this repository (package.json), so a missing node
    fails the tests instead of skipping them.
    """
    node = shutil.which("node")
    assert node is not None, "node is not on PATH: install Node.js 20 and run `npm ci`"

    def run(mode: str, payload: Any) -> Any:
        completed = subprocess.run(
            [node, str(OZ_SCRIPT), mode],
            input=json.dumps(payload).encode(),
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert completed.returncode == 0, (
            f"oz_tree.mjs {mode} failed with status {completed.returncode}: "
            f"{completed.stderr.decode(errors='replace')}"
        )
        return json.loads(completed.stdout)

    return run
