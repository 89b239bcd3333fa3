#!/usr/bin/env bash
# The whole test suite: install the servers the tests start (ClickHouse,
# SMTP, a Pulsar-protocol broker, ...), then run every test of the workspace.
# Each test starts its own server instances on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
cargo test --workspace --all-targets "$@"
cargo test --workspace --doc
