#!/usr/bin/env bash
# Installs what the tests, examples and demos need — and only what is missing, so a second run
# installs nothing. Prints one line per thing: "have X" or "installing X". Needs no tty.
#
#   Debian packages  apt-get, as root (checked with dpkg first; `apt-get update` runs at most once)
#   Python peers     a venv at ${HOTWIRE_CACHE:-<repo>/.cache}/venv (HOTWIRE_VENV overrides the path)
#   npm peers        ${HOTWIRE_CACHE:-<repo>/.cache}/node (none needed yet: NPM_PACKAGES is empty)
#
# Environment: HOTWIRE_CACHE, HOTWIRE_VENV, PYTHON (the interpreter that creates the venv; default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=${HOTWIRE_CACHE:-$ROOT/.cache}
VENV=${HOTWIRE_VENV:-$CACHE/venv}
PYTHON=${PYTHON:-python3}
export DEBIAN_FRONTEND=noninteractive

# What each package is for:
#   openssl libssl-dev pkg-config      the tls-openssl feature and `openssl s_server` as a TLS peer
#   nginx                              the HTTP/1.1 peer
#   ethtool iproute2 iputils-ping      network namespaces and veth setup (scripts/netns.sh)
#   tcpdump                            looking at what really went over a veth
#   python3-venv                       the venv for the Python peers (Debian's python3 needs it)
#   valgrind                           callgrind instruction counts for benchmarks
#   libcap2-bin                        capsh: running tests without capabilities
#   clang libelf-dev m4 libpcap-dev    the AF_XDP build (libxdp-sys builds libbpf and libxdp)
#   zlib1g-dev                         ditto
#   libquickfix-dev libquickfix-doc g++  the QuickFIX executor, built from the doc package's example
#   prometheus curl                    promtool lints the metrics endpoint's exposition, curl scrapes it
#   librsvg2-bin                       rsvg-convert: the latency plots rendered to PNG for a look
#   systemd                            systemd-analyze verify on config/hotwire.service
#   tzdata                             IANA time zones for FIX session schedules (/usr/share/zoneinfo)
APT_PACKAGES=(
    openssl libssl-dev pkg-config
    nginx
    ethtool iproute2 iputils-ping tcpdump
    python3-venv
    valgrind libcap2-bin
    clang libelf-dev m4 libpcap-dev zlib1g-dev
    libquickfix-dev libquickfix-doc g++
    prometheus curl librsvg2-bin systemd tzdata
)

# Pinned Python peers (PEERS.md): kosoku drives the Autobahn cases; websockets is the echo server;
# prometheus_client parses the metrics endpoint's exposition. iceoryx2 is the gateway's Python side
# (examples/strategy.py): it must be exactly the Rust crate's version (Cargo.toml), else every
# service open fails with a version mismatch.
PIP_PACKAGES=(
    kosoku==0.1.0
    websockets==17.4
    prometheus_client==0.26.0
    iceoryx2==0.10.0
)

# npm peers as name@version. None are needed yet; the installer below handles the list when one is.
NPM_PACKAGES=()

installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

install_apt() {
    local missing=() p
    for p in "${APT_PACKAGES[@]}"; do
        if installed "$p"; then
            echo "have $p"
        else
            echo "installing $p"
            missing+=("$p")
        fi
    done
    ((${#missing[@]})) || return 0
    if [[ $(id -u) -ne 0 ]]; then
        echo "peers.sh: installing Debian packages needs root: ${missing[*]}" >&2
        return 1
    fi
    # Installing nginx must not start a system-wide nginx on port 80: without a policy-rc.d that
    # forbids it, invoke-rc.d would start the service. Add one for the duration if there is none.
    local policy=/usr/sbin/policy-rc.d added_policy=
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        added_policy=1
    fi
    # apt's progress goes to a log, shown only when something fails.
    local rc=0 log
    mkdir -p "$CACHE"
    log=$CACHE/apt.log
    {
        apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"
    } </dev/null >"$log" 2>&1 || rc=$?
    [[ -z $added_policy ]] || rm -f "$policy"
    if ((rc != 0)); then
        cat "$log" >&2
        echo "peers.sh: apt-get failed ($rc)" >&2
    fi
    return "$rc"
}

# The installed version of a Python distribution in the venv, or nothing.
venv_version() {
    "$VENV/bin/python" - "$1" <<'EOF' 2>/dev/null
import sys, importlib.metadata as m
try:
    print(m.version(sys.argv[1]))
except m.PackageNotFoundError:
    pass
EOF
}

install_pip() {
    if [[ -x $VENV/bin/python ]] && "$VENV/bin/python" -c '' 2>/dev/null; then
        echo "have venv $VENV"
    else
        echo "installing venv $VENV"
        rm -rf "$VENV"
        mkdir -p "$(dirname "$VENV")"
        "$PYTHON" -m venv "$VENV"
    fi
    local missing=() req name
    for req in "${PIP_PACKAGES[@]}"; do
        name=${req%%==*}
        if [[ "$(venv_version "$name")" == "${req#*==}" ]]; then
            echo "have $req"
        else
            echo "installing $req"
            missing+=("$req")
        fi
    done
    ((${#missing[@]})) || return 0
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "${missing[@]}" </dev/null
}

install_npm() {
    ((${#NPM_PACKAGES[@]})) || return 0
    local dir=$CACHE/node missing=() spec name
    for spec in "${NPM_PACKAGES[@]}"; do
        name=${spec%@*}
        if [[ "$(node -p "require('$dir/node_modules/$name/package.json').version" 2>/dev/null)" == "${spec##*@}" ]]; then
            echo "have $spec"
        else
            echo "installing $spec"
            missing+=("$spec")
        fi
    done
    ((${#missing[@]})) || return 0
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-audit --no-fund --silent "${missing[@]}" </dev/null
}

# The Rust components CI relies on ship with the toolchain here; say so clearly if one is not.
check_rust() {
    local c
    for c in rustfmt clippy; do
        if cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1; then
            echo "have $c"
        else
            echo "installing $c"
            rustup component add "$c"
        fi
    done
}

install_apt
install_pip
install_npm
check_rust
