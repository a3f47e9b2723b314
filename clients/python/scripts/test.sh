#!/usr/bin/env bash
# Everything, in one command: the venv (scripts/setup.sh), ruff, mypy --strict, then pytest
# against the real sessiond at $SESSIOND_BIN (default /tmp/sessiond-bin/sessiond).
# Extra arguments go to pytest (e.g. scripts/test.sh -k attacks).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bash scripts/setup.sh
py="$here/.venv/bin"
export SESSIOND_BIN="${SESSIOND_BIN:-/tmp/sessiond-bin/sessiond}"
if [ ! -x "$SESSIOND_BIN" ]; then
    echo "test: no sessiond binary at $SESSIOND_BIN (set SESSIOND_BIN)" >&2
    exit 1
fi
echo "test: ruff"
"$py/ruff" check src tests bench
"$py/ruff" format --check src tests bench
echo "test: mypy --strict"
"$py/mypy" --strict
echo "test: pytest"
exec "$py/pytest" "$@"
