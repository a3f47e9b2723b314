#!/usr/bin/env bash
# Creates clients/python/.venv (when missing, or older than pyproject.toml) and installs the
# package in editable mode with its test tools. Safe to run again: a fresh venv is kept.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$here/.venv"
stamp="$venv/.installed"
python="${PYTHON:-python3}"
if [ -f "$stamp" ] && [ "$stamp" -nt "$here/pyproject.toml" ]; then
    exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
    echo "setup: creating $venv with $("$python" --version)"
    "$python" -m venv "$venv"
fi
echo "setup: installing sessiond-verify[test] (editable)"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$here[test]"
touch "$stamp"
