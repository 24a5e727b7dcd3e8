#!/usr/bin/env bash
# Set up, then run the whole product loop on embedded PostgreSQL and a local anvil chain.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/ledger demo "$@"
