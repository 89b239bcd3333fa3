#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian 12 machine:
# runs every scripts/install/*.sh in name order. Each script is idempotent
# and skips work that is already done, so running this again is cheap.
set -euo pipefail
cd "$(dirname "$0")/.."
for step in scripts/install/*.sh; do
    [ -e "$step" ] || continue
    echo "==> $step"
    bash "$step"
done
