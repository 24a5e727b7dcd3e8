"""Contributor Ledger: scores contributed browsing sessions, keeps points in PostgreSQL and
settles ownership tokens through Merkle roots anchored on an EVM chain."""

from pathlib import Path

__version__ = "0.1.0"

#: Repository root: contract artifacts, migrations and node_modules are found relative to it.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
