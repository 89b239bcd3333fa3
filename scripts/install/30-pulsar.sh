#!/usr/bin/env bash
# The Pulsar-protocol broker the Pulsar connectors' tests start, and the
# independent Python client they check against:
# - `pulsar-lite` (PyPI wheel): its broker binary goes to $TOOLS/pulsar-lite
#   (no Apache Pulsar broker can be installed here; see TESTING.md).
# - `pulsar-client` (PyPI), installed into the shared test venv
#   $TOOLS/venv (scripts/lib/venv.sh; whichever script runs first makes it).
# - `protoc` (Debian's protobuf-compiler): the `pulsar` crate's build script
#   compiles Pulsar's protocol definition with it, so building the Pulsar
#   crates needs it, not only testing them.
# Idempotent: skips the download when the pinned broker version is in place
# and lets pip skip what is already installed.
set -euo pipefail

TOOLS="${CONNECTORS_TEST_TOOLS:-/opt/connectors-test}"
VENV="$TOOLS/venv"
PULSAR_LITE_VERSION="0.2.0"
PULSAR_CLIENT_VERSION="3.13.0"

# --- protoc, for building the `pulsar` crate ------------------------------
if ! command -v protoc >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler >/dev/null
fi
protoc --version

# --- the shared virtualenv ------------------------------------------------
source "$(dirname "$0")/../lib/venv.sh"
ensure_venv "$VENV"

# --- the Python client -----------------------------------------------------
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "pulsar-client==$PULSAR_CLIENT_VERSION"
"$VENV/bin/python" -c 'import pulsar; print("pulsar-client", pulsar.__version__)'

# --- the broker binary -----------------------------------------------------
BROKER="$TOOLS/pulsar-lite"
STAMP="$TOOLS/pulsar-lite.version"
if [ -x "$BROKER" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$PULSAR_LITE_VERSION" ]; then
    echo "pulsar-lite $PULSAR_LITE_VERSION already installed at $BROKER"
    exit 0
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
"$VENV/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: --dest "$WORK" "pulsar-lite==$PULSAR_LITE_VERSION"
# Take the binary out of the wheel with Python's zipfile (no unzip needed).
"$VENV/bin/python" - "$WORK" "$BROKER.tmp" <<'PY'
import glob, shutil, sys, zipfile
work, dest = sys.argv[1], sys.argv[2]
(wheel,) = glob.glob(f"{work}/pulsar_lite-*.whl")
with zipfile.ZipFile(wheel) as z:
    (name,) = [n for n in z.namelist() if n.endswith("/pulsar_lite/bin/pulsar-lite")]
    with z.open(name) as src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out)
PY
chmod 755 "$BROKER.tmp"
mv "$BROKER.tmp" "$BROKER"
echo "$PULSAR_LITE_VERSION" > "$STAMP"
"$BROKER" --help >/dev/null
echo "pulsar-lite $PULSAR_LITE_VERSION installed at $BROKER"
