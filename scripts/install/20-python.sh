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

source "$(dirname "$0")/../lib/venv.sh"
ensure_venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PACKAGES[@]}"
"$VENV/bin/python" -c 'import aiosmtpd; print("aiosmtpd", aiosmtpd.__version__)'
