#!/usr/bin/env bash
# Test setup for the browser tests: Debian's chromium at /usr/bin/chromium (playwright-core
# drives it; no browser is ever downloaded). Installed with apt when missing and we are root.
# Without it the browser tests fail under CI=true and are skipped otherwise (they say so).
set -u
CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup-browser: $CHROMIUM is missing; installing Debian's chromium with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    if apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; then
        echo "setup-browser: chromium installed: $("$CHROMIUM" --version 2>/dev/null || echo '?')"
        exit 0
    fi
    echo "setup-browser: apt-get could not install chromium" >&2
else
    echo "setup-browser: $CHROMIUM is missing and cannot be installed here (not root or no apt-get)" >&2
fi
if [ -n "${CI:-}" ] && [ "${CI}" != "false" ] && [ "${CI}" != "0" ]; then
    echo "setup-browser: FATAL under CI: the browser tests need chromium" >&2
    exit 1
fi
echo "setup-browser: the browser tests will be skipped"
exit 0
