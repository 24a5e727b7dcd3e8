#!/usr/bin/env bash
# Run every benchmark in turn at its documented size and keep each output under bench-results/.
# Takes about 30 minutes on a 2-core machine; needs PostgreSQL on 127.0.0.1:5432 and `wrk`.
# Pass --quick for small sizes (a few minutes) to check that the scripts work.
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

out=bench-results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
python=.venv/bin/python
status=0

run() {
    local name=$1
    shift
    echo "== $name: $*"
    if ! "$python" "$@" 2>&1 | tee "$out/$name.txt"; then
        echo "== $name failed (see $out/$name.txt)" >&2
        status=1
    fi
}

if [ "${1:-}" = "--quick" ]; then
    run gas bench/gas.py --sizes 4 10
    run merkle_tree bench/merkle_tree.py --leaves 10000
    run epoch_close bench/epoch_close.py --contributors 10000 --sessions-per-contributor 3
    run intake bench/intake.py --sessions 8000
    run read_path bench/read_path.py --contributors 20000 --sessions 200000 --seconds 5
else
    run gas bench/gas.py
    run merkle_tree bench/merkle_tree.py --leaves 100000
    run epoch_close bench/epoch_close.py --full
    run intake bench/intake.py --sessions 48000
    run read_path bench/read_path.py
fi
echo "outputs in $out"
exit $status
