#!/usr/bin/env bash
# Feature hygiene, as CI runs it from scripts/test.sh:
#   1. the slim library: with `--no-default-features --features ws,tls-rustls`, the normal dependency
#      tree has none of the appliance's crates (clap, toml, serde, hdrhistogram, env_logger,
#      core_affinity, tungstenite, rcgen);
#   2. clippy -D warnings on all targets with each feature alone (over --no-default-features), and
#      with none. --all-features is test.sh's own clippy step;
#   3. tests/plain_endpoints.rs with `--no-default-features --features http,fix`: the HTTP and FIX
#      endpoints with no TLS backend, against nginx and the QuickFIX executor.
# One target directory for all of them, so dependencies built for one feature set are reused by the
# next. `CARGO=...` picks the cargo to run (default: cargo). Prints the time each step took.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}

forbidden=(clap toml serde hdrhistogram env_logger core_affinity tungstenite rcgen)
tree=$($CARGO tree -e normal --prefix none --format '{p}' --no-default-features --features ws,tls-rustls |
    awk '{print $1}' | sort -u)
found=()
for crate in "${forbidden[@]}"; do
    grep -qx "$crate" <<<"$tree" && found+=("$crate")
done
if ((${#found[@]})); then
    echo "features.sh: the slim library (ws, tls-rustls) depends on: ${found[*]}" >&2
    $CARGO tree -e normal --no-default-features --features ws,tls-rustls -i "${found[0]}" >&2 || true
    exit 1
fi
echo "slim library (ws, tls-rustls): none of ${forbidden[*]}"

# Every feature Cargo knows, the implicit ones of optional dependencies included.
mapfile -t features < <($CARGO metadata --no-deps --format-version 1 |
    python3 -c 'import json, sys; print("\n".join(sorted(json.load(sys.stdin)["packages"][0]["features"])))' |
    grep -vx default)
total_start=$SECONDS
for f in "" "${features[@]}"; do
    start=$SECONDS
    $CARGO clippy --quiet --no-default-features ${f:+--features "$f"} --all-targets -- -D warnings
    echo "clippy --no-default-features ${f:+--features $f}: ok ($((SECONDS - start)) s)"
done
echo "clippy on ${#features[@]} features alone: $((SECONDS - total_start)) s"

# The HTTP and FIX endpoints without a TLS backend, against their real peers (nginx, the QuickFIX
# executor): the build in which `https`/`fixs` are refused and `http`/`fix` must still work.
start=$SECONDS
$CARGO test --quiet --no-default-features --features http,fix --test plain_endpoints
echo "plain endpoints (http, fix, no TLS backend): ok ($((SECONDS - start)) s)"
