"""Starting `ledger serve` for a benchmark: a free loopback port, the process, its readiness."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_api(env: dict[str, str], *, port: int, workers: int, timeout: float = 60) -> subprocess.Popen:
    """Start `ledger serve` on 127.0.0.1:`port` and return it once /healthz returns 200.

    Raises:
        SystemExit: when the server is not ready within `timeout` seconds (it is stopped).
    """
    command = [sys.executable, "-m", "ledger.cli", "--log-level", "WARNING", "serve", "--port", str(port), "--workers", str(workers)]
    server = subprocess.Popen(command, env=env, cwd=ROOT)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx2.TransportError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            server.terminate()
            raise SystemExit(f"the server did not start within {timeout:.0f} s")
        time.sleep(0.2)
