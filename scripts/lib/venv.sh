# Sourced by scripts/install/*.sh: `ensure_venv DIR` creates the shared
# Python virtualenv of the test tools at DIR unless it exists. It prefers
# Debian's python3 (what a fresh machine gets; installs python3-venv when
# the venv module is missing) and falls back to any python3 on the PATH.
ensure_venv() {
    local venv="$1"
    [ -x "$venv/bin/python" ] && return 0
    local python=/usr/bin/python3
    if ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
        if command -v apt-get >/dev/null; then
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
        fi
    fi
    if ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
        python="$(command -v python3)"
    fi
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv "$venv"
}
