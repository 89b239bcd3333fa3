#!/usr/bin/env bash
# Python test tools in one virtualenv: the SMTP server the email sink's
# tests start (aiosmtpd). Other Python test tools go in PACKAGES below.
# Idempotent: reuses the venv and lets pip skip what is already installed.
set -euo pipefail

VENV="${CONNECTORS_TEST_TOOLS:-/opt/connectors-test}/venv"

# Exact versions, so every machine tests against the same tools.
PACKAGES=(
    "aiosmtpd==1.4.6"
)

# Prefer Debian's python3 (it is what a fresh machine gets); any python3
# with the venv module works.
PYTHON=/usr/bin/python3
if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
    if command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
    fi
fi
if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
    PYTHON="$(command -v python3)"
fi

if [ ! -x "$VENV/bin/python" ]; then
    mkdir -p "$(dirname "$VENV")"
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PACKAGES[@]}"
"$VENV/bin/python" -c 'import aiosmtpd; print("aiosmtpd", aiosmtpd.__version__)'
