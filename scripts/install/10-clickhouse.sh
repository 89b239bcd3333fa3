#!/usr/bin/env bash
# ClickHouse server and client for the sink-clickhouse tests and benchmarks.
# Debian 12 ships ClickHouse 18.16. The tests start private server processes
# from this install (testkit::clickhouse), each with its own config, data
# dir and ports; the packaged service and its config are left alone.
set -euo pipefail

if command -v clickhouse-server >/dev/null 2>&1 \
    && command -v clickhouse-client >/dev/null 2>&1 \
    && [ -f /etc/clickhouse-server/config.xml ] \
    && id clickhouse >/dev/null 2>&1; then
    echo "clickhouse-server and clickhouse-client are already installed"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# On a machine with systemd the package also starts its own service on
# 8123/9000; the tests do not use it (each starts a private server).
apt-get update -qq
apt-get install -y -qq --no-install-recommends clickhouse-server clickhouse-client

# The package creates the `clickhouse` user in its postinst; make sure it is
# there even if a previous install was interrupted.
if ! id clickhouse >/dev/null 2>&1; then
    adduser --system --group --no-create-home --home /nonexistent clickhouse
fi

clickhouse-server --version 2>/dev/null || clickhouse-client --version
