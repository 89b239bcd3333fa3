#!/usr/bin/env bash
# The whole test suite: install the servers the tests start (ClickHouse,
# SMTP, a Pulsar-protocol broker, ...), then run every test of the workspace.
# Each test starts its own server instances on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
# Libraries, binaries, integration and doc tests. The default target
# selection also builds every example as a program, which the examples'
# tests run (testkit::example_command); `--all-targets` would build them as
# test harnesses instead.
cargo test --workspace "$@"
# Every benchmark once, in test mode, so that they keep working.
cargo test --workspace --benches "$@"
