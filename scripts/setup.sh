#!/usr/bin/env bash
# Install what the project needs into .venv and node_modules; fast when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "error: Python 3.11 or newer is required (found $("$python" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
    exit 1
fi
command -v npm >/dev/null || { echo "error: npm (Node.js 20 or newer) is required" >&2; exit 1; }

stamp() { cat "$@" | sha256sum | cut -d' ' -f1; }

if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
python_stamp=$(stamp pyproject.toml requirements.lock)
if [ "$(cat .venv/.ledger-stamp 2>/dev/null)" != "$python_stamp" ]; then
    echo "installing Python packages into .venv"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -c requirements.lock -e ".[test]"
    echo "$python_stamp" > .venv/.ledger-stamp
fi

# The wallet page test drives Debian's Chromium; install it when it is missing and we may.
if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing chromium for the browser test"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "warning: no Chromium at ${CHROMIUM_PATH:-/usr/bin/chromium}: the browser test will fail;" \
            "install it (apt-get install chromium) or set CHROMIUM_PATH" >&2
    fi
fi

node_stamp=$(stamp package.json package-lock.json)
if [ "$(cat node_modules/.ledger-stamp 2>/dev/null)" != "$node_stamp" ]; then
    echo "installing npm packages into node_modules"
    npm ci --no-audit --no-fund --loglevel=error
    echo "$node_stamp" > node_modules/.ledger-stamp
fi
