"""Start and stop a local anvil chain for development, the demo and tests.

The node is the native anvil binary shipped in the npm package `@foundry-rs/anvil` (installed by
`npm ci` into node_modules). The binary is called directly, because the `node_modules/.bin/anvil`
wrapper exits 0 even when anvil fails. The node always listens on 127.0.0.1 only.

    with start_anvil() as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        deployer = node.accounts[0]
"""

from __future__ import annotations

import json
import logging
import os
import platform
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import IO

from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger import PROJECT_ROOT

logger = logging.getLogger(__name__)

#: Mnemonic of anvil's default dev accounts. Publicly known: for local chains only.
DEV_MNEMONIC = "test test test test test test test test test test test junk"

#: Number of funded dev accounts anvil creates from `DEV_MNEMONIC` by default.
DEV_ACCOUNT_COUNT = 10

#: Seconds to wait for a new node to return its chain id.
DEFAULT_START_TIMEOUT = 15.0

#: Seconds to wait for the node to exit after SIGTERM before it is killed.
DEFAULT_STOP_TIMEOUT = 5.0

#: Trailing characters of anvil's stderr shown in a start error.
STDERR_TAIL_CHARS = 2_000

#: npm platform package folder per (system, machine), as `platform.system()/machine()` name them.
_PLATFORM_PACKAGES = {
    ("linux", "x86_64"): "anvil-linux-amd64",
    ("linux", "amd64"): "anvil-linux-amd64",
    ("linux", "aarch64"): "anvil-linux-arm64",
    ("linux", "arm64"): "anvil-linux-arm64",
    ("darwin", "x86_64"): "anvil-darwin-amd64",
    ("darwin", "arm64"): "anvil-darwin-arm64",
    ("windows", "amd64"): "anvil-win32-amd64",
}


class AnvilError(RuntimeError):
    """Anvil is missing, exited at start, or timed out before returning its chain id."""


@cache
def dev_accounts() -> tuple[LocalAccount, ...]:
    """Derive anvil's funded dev accounts from `DEV_MNEMONIC` (HD path m/44'/60'/0'/0/i)."""
    Account.enable_unaudited_hdwallet_features()
    return tuple(
        Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
        for index in range(DEV_ACCOUNT_COUNT)
    )


def anvil_binary() -> Path:
    """Return the path of the native anvil binary in node_modules for this platform."""
    system = platform.system().lower()
    machine = platform.machine().lower()
    package = _PLATFORM_PACKAGES.get((system, machine))
    if package is None:
        raise AnvilError(
            f"no anvil binary is known for platform {system}/{machine}; "
            "set an RPC URL to use another node"
        )

    name = "anvil.exe" if system == "windows" else "anvil"
    binary = PROJECT_ROOT / "node_modules" / "@foundry-rs" / package / "bin" / name
    if not binary.is_file():
        raise AnvilError(f"anvil binary not found at {binary}; run `npm ci` in {PROJECT_ROOT}")
    return binary


@dataclass
class AnvilNode:
    """A running anvil process and how to reach it. Stop it with `stop()` or a `with` block."""

    url: str
    port: int
    chain_id: int
    process: subprocess.Popen[bytes]
    _stderr: IO[bytes] = field(repr=False)

    @property
    def accounts(self) -> tuple[LocalAccount, ...]:
        """The 10 funded dev accounts, index i at HD path m/44'/60'/0'/0/i."""
        return dev_accounts()

    @property
    def private_keys(self) -> tuple[str, ...]:
        """Hex private keys (0x-prefixed) of the 10 funded dev accounts, in `accounts` order."""
        return tuple(account.key.to_0x_hex() for account in dev_accounts())

    @property
    def pid(self) -> int:
        """Process id of the anvil process."""
        return self.process.pid

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        """Terminate the node and wait for it; kill it if it is still running after `timeout` s.

        Calling it again after the node stopped does nothing.
        """
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                logger.warning("anvil.kill pid=%d timeout_s=%s", self.pid, timeout)
                self.process.kill()
                self.process.wait()
            logger.info("anvil.stopped port=%d pid=%d returncode=%s", self.port, self.pid, self.process.returncode)
        if not self._stderr.closed:
            self._stderr.close()

    def __enter__(self) -> AnvilNode:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def start_anvil(
    *,
    port: int | None = None,
    chain_id: int = 31337,
    block_time: float | None = None,
    state_path: str | os.PathLike[str] | None = None,
    timeout: float = DEFAULT_START_TIMEOUT,
) -> AnvilNode:
    """Start anvil on 127.0.0.1 and wait until it returns its chain id.

    `port=None` picks a free port. `block_time` (seconds) switches from mining on every
    transaction to mining at that interval. `state_path` loads the chain state from that file if
    it exists and writes it back when anvil exits after SIGTERM (anvil's `--state`).
    Raises AnvilError when the binary is missing, the process exits, or `timeout` seconds pass.
    """
    binary = anvil_binary()
    if port is None:
        port = _free_port()
    elif _port_in_use(port):
        # anvil 1.7.1 starts on a port another node already listens on and shares it with that node
        # (as with SO_REUSEPORT), so the readiness check would reach the wrong node.
        raise AnvilError(f"port {port} on 127.0.0.1 is already in use; stop what listens there or pass port=None")
    return _launch(binary, port, chain_id, block_time, state_path, timeout)


def _launch(
    binary: Path,
    port: int,
    chain_id: int,
    block_time: float | None,
    state_path: str | os.PathLike[str] | None,
    timeout: float,
) -> AnvilNode:
    command = [
        str(binary),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--chain-id", str(chain_id),
        "--prune-history",
        "--silent",
    ]  # fmt: skip
    if block_time is not None:
        command += ["--block-time", str(block_time)]
    if state_path is not None:
        command += ["--state", os.fspath(state_path)]

    # stderr goes to a temporary file: nothing reads a pipe while the node runs, and a full pipe
    # would block anvil.
    stderr = tempfile.TemporaryFile(prefix="anvil-stderr-")
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
    url = f"http://127.0.0.1:{port}"
    node = AnvilNode(url=url, port=port, chain_id=chain_id, process=process, _stderr=stderr)

    deadline = time.monotonic() + timeout
    while True:
        returncode = process.poll()
        if returncode is not None:
            tail = _read_tail(stderr)
            stderr.close()
            raise AnvilError(f"anvil exited with code {returncode} at start; stderr: {tail or '(empty)'}")

        reported_chain_id = _query_chain_id(url)
        if reported_chain_id is not None:
            break

        if time.monotonic() > deadline:
            tail = _read_tail(stderr)
            node.stop()
            raise AnvilError(
                f"anvil on {url} did not return eth_chainId within {timeout} s; stderr: {tail or '(empty)'}"
            )
        time.sleep(0.05)

    if reported_chain_id != chain_id:
        node.stop()
        raise AnvilError(f"anvil on {url} returned chain id {reported_chain_id}, expected {chain_id}")

    logger.info("anvil.started port=%d pid=%d chain_id=%d", port, process.pid, chain_id)
    return node


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _query_chain_id(url: str) -> int | None:
    """Return the node's chain id, or None while it does not accept requests yet."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=1.0) as response:
            return int(json.load(response)["result"], 16)
    except (urllib.error.URLError, ConnectionError, TimeoutError, KeyError, ValueError):
        return None


def _read_tail(stream: IO[bytes]) -> str:
    stream.flush()
    size = stream.seek(0, os.SEEK_END)
    stream.seek(max(0, size - STDERR_TAIL_CHARS))
    return stream.read().decode(errors="replace").strip()
