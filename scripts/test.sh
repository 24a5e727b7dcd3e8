#!/usr/bin/env bash
# Set up, then run the whole test suite. Needs PostgreSQL on 127.0.0.1:5432 (trust auth) or
# TEST_DATABASE_ADMIN_URL pointing at a server where the test user may create databases.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
