#!/usr/bin/env bash
# The whole test suite: install the servers the tests start (ClickHouse,
# SMTP, a Pulsar-protocol broker, ...), then run every test of the workspace.
# Each test starts its own server instances on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
# The examples' tests run the example programs (testkit::example_command);
# building them here, with the workspace's features, shares the build.
cargo build --workspace --examples
cargo test --workspace --all-targets "$@"
cargo test --workspace --doc
