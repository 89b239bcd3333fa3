#!/usr/bin/env bash
# What the Kafka crates need to build: rdkafka bundles librdkafka and
# compiles it (C compiler, make); its `ssl` feature (TLS and SASL SCRAM)
# links the system OpenSSL, found with pkg-config; compression links zlib.
# The tests need no server: they run librdkafka's mock cluster, a Kafka
# protocol implementation inside the test process (see TESTING.md).
# Idempotent: installs only what is missing.
set -euo pipefail

missing=()
command -v cc >/dev/null || missing+=(build-essential)
command -v make >/dev/null || missing+=(make)
command -v pkg-config >/dev/null || missing+=(pkg-config)
pkg-config --exists openssl 2>/dev/null || missing+=(libssl-dev)
pkg-config --exists zlib 2>/dev/null || missing+=(zlib1g-dev)

if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "kafka build dependencies: $(pkg-config --modversion openssl) (OpenSSL), $(pkg-config --modversion zlib) (zlib)"
