#!/usr/bin/env bash
# Chaos soak: `hotwire run` with every endpoint kind (WebSocket feed and echo, REST, FIX orders,
# each plain and TLS) against `hotwire venue --chaos SEED`, which kills connections, resets them,
# stalls, writes garbage and reads slowly at random (src/app/venue_chaos.rs). Both network paths
# run side by side, each on its own veth pair (scripts/netns.sh): kernel TCP and AF_XDP (the binary
# needs the xdp feature; HOTWIRE_SOAK_PATHS="kernel" runs one). Root needed.
#
#   scripts/soak.sh [MINUTES]     (default 2; HOTWIRE_SOAK_MINUTES also sets it; fractions work)
#
# The faults stop 20 s before the end, so every endpoint ends recovered. Then it checks:
#   - no panic in any log;
#   - RSS growth of each `hotwire run` (VmRSS sampled every 2 s, from 15 s in to the end) under
#     HOTWIRE_SOAK_RSS_MIB (default 16 MiB + 2 MiB a minute, a loose bound: the FIX file store keeps
#     its resend window on disk, and a 30-minute run ended below its starting RSS);
#   - from the venue's FIX log (--fix-log): MsgSeqNums continuous on both sides of every session
#     (each message taken in order is the one expected, every fresh one we sent is the next number,
#     every gap was filled by a resend), every order acknowledged (an ExecutionReport for every
#     ClOrdID, sent or resent), and no session left with an open gap;
#   - every recording readable to its last whole record (`hotwire replay`);
#   - nothing left running, no namespace, no XDP program left on an interface.
# The last line sums it up: reconnects, faults injected, orders, messages, RSS start/end.
#
# HOTWIRE_BIN: the binary (default target/debug/hotwire, built with --all-features if missing).
# HOTWIRE_SOAK_SEED: the chaos seed (default: the time).
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-${HOTWIRE_SOAK_MINUTES:-2}}
SEED=${HOTWIRE_SOAK_SEED:-$(date +%s)}
RSS_BOUND_MIB=${HOTWIRE_SOAK_RSS_MIB:-$(awk -v m="$MINUTES" 'BEGIN { print int(16 + 2 * m) }')}
BIN=${HOTWIRE_BIN:-$PWD/target/debug/hotwire}
[[ $(id -u) -eq 0 ]] || { echo "soak: needs root (network namespaces)" >&2; exit 2; }
[[ -x $BIN ]] || cargo build --all-features --bin hotwire
SECONDS_TOTAL=$(awk -v m="$MINUTES" 'BEGIN { s = int(m * 60); if (s < 40) s = 40; print s }')
CHAOS_FOR=$((SECONDS_TOTAL - 20))
WORK=$(mktemp -d /tmp/hotwire-soak.XXXXXX)
PIDS=() NETNS_IDS=()
export HOTWIRE_NETNS_OWNER=${HOTWIRE_NETNS_OWNER:-soak-$$}

cleanup() {
    local rc=$? pid id
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    for id in "${NETNS_IDS[@]}"; do ./scripts/netns.sh down "$id" >/dev/null 2>&1 || true; done
    if ((rc != 0)); then
        echo "soak: FAILED; logs kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
    echo "soak: FAIL: $*" >&2
    exit 1
}

read -ra PATHS <<<"${HOTWIRE_SOAK_PATHS:-kernel xdp}"

# One veth pair per path; the venue in the server namespace, the appliance in the client one.
start_path() {
    local path=$1 env ip cip dir=$WORK/$1 network
    mkdir -p "$dir"
    env=$(./scripts/netns.sh up)
    eval "$env"
    NETNS_IDS+=("$HW_ID")
    ip=$HW_SERVER_IP
    echo "$env" >"$dir/netns.env"
    # `ip netns exec` execs the command (no fork): $! is the venue's PID.
    ip netns exec "$HW_SERVER_NS" env RUST_LOG=info "$BIN" venue --listen "$ip:9001" --tls --tls-listen "$ip:9443" \
        --http-listen "$ip:9080" --https-listen "$ip:9444" \
        --fix-listen "$ip:9876" --fixs-listen "$ip:9877" --cert-dir "$dir/certs" \
        --chaos "$SEED" --chaos-every 4 --chaos-for "$CHAOS_FOR" --fix-log "$dir/fix.log" \
        >"$dir/venue.out" 2>"$dir/venue.err" &
}

launch() {
    local path=$1 dir=$WORK/$1
    # shellcheck disable=SC1091
    source "$dir/netns.env"
    local ip=$HW_SERVER_IP o network
    IFS=. read -r -a o <<<"$HW_CLIENT_IP"
    if [[ $path == xdp ]]; then
        network="[network]
path = \"xdp\"
interface = \"$HW_CLIENT_IF\"
local_ip = \"${o[0]}.${o[1]}.${o[2]}.3/24\"
fallback = false

[[thread]]
name = \"io\"
selector = \"direct\""
    else
        network="[[thread]]
name = \"io\"
selector = \"mio\""
    fi
    local common='connect_timeout = "2s"
reconnect = { initial = "100ms", max = "1s" }'
    local tls="[endpoint.tls]
ca = \"$dir/certs/ca.pem\"
server_name = \"localhost\""
    cat >"$dir/soak.toml" <<EOF
$network

[[endpoint]]
name = "feed"
url = "ws://$ip:9001/feed?rate=500"
heartbeat = "500ms"
record = "$dir/feed.hwr"
$common

[[endpoint]]
name = "feed-tls"
url = "wss://$ip:9443/feed?rate=500"
heartbeat = "500ms"
record = "$dir/feed-tls.hwr"
$common
$tls

[[endpoint]]
name = "echo"
url = "ws://$ip:9001/echo"
heartbeat = "500ms"
send = ["hello", "world"]
latency = "round-trip"
$common

[[endpoint]]
name = "rest"
url = "http://$ip:9080/api/time"
interval = "50ms"
request_timeout = "1s"
$common

[[endpoint]]
name = "rest-tls"
url = "https://$ip:9444/api/book?symbol=HWX"
interval = "100ms"
request_timeout = "1s"
$common
$tls

[[endpoint]]
name = "orders"
url = "fix://$ip:9876"
heartbeat = "1s"
fix = { sender = "HW-$path", target = "VENUE", order_rate = 20.0, store = "$dir/fix-store" }
$common

[[endpoint]]
name = "orders-tls"
url = "fixs://$ip:9877"
heartbeat = "1s"
fix = { sender = "HWS-$path", target = "VENUE", order_rate = 20.0, store = "$dir/fixs-store" }
$common
$tls
EOF
    ip netns exec "$HW_CLIENT_NS" env RUST_LOG=info "$BIN" run "$dir/soak.toml" \
        --duration "$SECONDS_TOTAL" --json "$dir/report.json" >"$dir/run.out" 2>"$dir/run.err" &
    echo $! >"$dir/run.pid"
    PIDS+=("$(cat "$dir/run.pid")")
}

rss_kib() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true
}

echo "soak: ${MINUTES} min (${SECONDS_TOTAL} s, faults for ${CHAOS_FOR} s), seed $SEED, paths: ${PATHS[*]}"
for p in "${PATHS[@]}"; do
    start_path "$p"
    PIDS+=($!)
    echo $! >"$WORK/$p/venue.pid"
done
for p in "${PATHS[@]}"; do
    for _ in $(seq 100); do grep -q '^venue: fixs' "$WORK/$p/venue.out" 2>/dev/null && break; sleep 0.1; done
    grep -q '^venue: fixs' "$WORK/$p/venue.out" || fail "$p: the venue did not start: $(cat "$WORK/$p/venue.err")"
    launch "$p"
done

# Sample RSS every 2 s until every appliance has ended.
running=1
while ((running)); do
    running=0
    for p in "${PATHS[@]}"; do
        pid=$(cat "$WORK/$p/run.pid")
        if kill -0 "$pid" 2>/dev/null; then
            running=1
            r=$(rss_kib "$pid")
            [[ -n $r ]] && echo "$(date +%s) $r" >>"$WORK/$p/rss"
        fi
    done
    ((running)) && sleep 2
done

total_reconnects=0 total_faults=0 total_orders=0 total_messages=0 figures=""
for p in "${PATHS[@]}"; do
    dir=$WORK/$p
    rc=0
    wait "$(cat "$dir/run.pid")" || rc=$?
    ((rc == 0)) || fail "$p: hotwire run exited with $rc: $(tail -5 "$dir/run.err")"
    kill -TERM "$(cat "$dir/venue.pid")"
    wait "$(cat "$dir/venue.pid")" || true
    ! grep -l 'panicked' "$dir"/*.err "$dir"/*.out || fail "$p: a panic (see $dir)"
    # The AF_XDP path must really have been used, and its program gone with the process.
    source "$dir/netns.env"
    if [[ $p == xdp ]]; then
        grep -q 'network path xdp' "$dir/run.err" || fail "xdp: the appliance did not use AF_XDP"
    fi
    ! ip -n "$HW_CLIENT_NS" link show "$HW_CLIENT_IF" | grep -q 'prog/xdp\|xdp' ||
        fail "$p: an XDP program is left on $HW_CLIENT_IF"
    # RSS: the first sample 15 s in against the last.
    start_ts=$(head -1 "$dir/rss" | cut -d' ' -f1)
    rss_start=$(awk -v t=$((start_ts + 15)) '$1 >= t { print $2; exit }' "$dir/rss")
    rss_end=$(tail -1 "$dir/rss" | cut -d' ' -f2)
    [[ -n $rss_start && -n $rss_end ]] || fail "$p: too few RSS samples"
    growth=$(((rss_end - rss_start) / 1024))
    ((growth < RSS_BOUND_MIB)) || fail "$p: RSS grew ${growth} MiB (${rss_start} -> ${rss_end} KiB), bound ${RSS_BOUND_MIB} MiB"
    # Sequence numbers and orders, from the venue's FIX log.
    orders=$(python3 - "$dir/fix.log" <<'PY'
import sys
exp_in, exp_out, gap, acked, ordered, errors = {}, {}, {}, set(), set(), []
for n, line in enumerate(open(sys.argv[1]), 1):
    f = line.split()
    kind, s = f[0], f[1]
    kv = dict(x.split("=", 1) for x in f[2:] if "=" in x)
    if kind == "LOGON":
        if kv["reset"] == "1":
            exp_in[s], exp_out[s] = 1, 1
        exp_in.setdefault(s, 1)
        exp_out.setdefault(s, 1)
    elif kind == "IN":
        seq = int(f[2])
        if seq != exp_in[s]:
            errors.append(f"line {n}: {s} took {seq}, expected {exp_in[s]}")
        exp_in[s] = int(kv["new"]) if "new" in kv else seq + 1
        if s in gap and exp_in[s] > gap[s]:
            del gap[s]
        if f[3] == "D":
            ordered.add((s, kv["cl"]))
    elif kind == "GAP":
        gap[s] = max(gap.get(s, 0), int(kv["got"]))
    elif kind == "OUT":
        seq = int(f[2])
        if f[-1] == "dup":
            if seq >= exp_out[s]:
                errors.append(f"line {n}: {s} resent {seq}, never sent")
        else:
            if seq != exp_out[s]:
                errors.append(f"line {n}: {s} sent {seq}, expected {exp_out[s]}")
            exp_out[s] = seq + 1
        if f[3] == "8":
            acked.add((s, kv["cl"]))
    elif kind == "ERR":
        errors.append(f"line {n}: {line.strip()}")
errors += [f"{s}: gap up to {g} never filled" for s, g in gap.items()]
errors += [f"{s}: order {c} never acknowledged" for s, c in sorted(ordered - acked)]
if len(exp_in) < 2:
    errors.append(f"only {len(exp_in)} FIX sessions logged on")
if errors:
    print("\n".join(errors[:20]), file=sys.stderr)
    sys.exit(1)
print(len(ordered))
PY
    ) || fail "$p: FIX sequence check (log: $dir/fix.log)"
    ((orders > 0)) || fail "$p: no orders"
    for rec in "$dir"/*.hwr; do
        "$BIN" replay "$rec" >/dev/null 2>"$dir/replay.err" || fail "$p: $rec unreadable: $(cat "$dir/replay.err")"
    done
    read -r reconnects messages < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(sum(e["reconnects"] for e in r["endpoints"]), sum(e["messages"] for e in r["endpoints"]))' "$dir/report.json")
    faults=$(sed -n 's/^venue: chaos faults=\([0-9]*\).*/\1/p' "$dir/venue.out")
    [[ -n $faults && $faults -gt 0 ]] || fail "$p: the venue injected no faults"
    echo "soak: $p: $(sed -n 's/^venue: chaos //p' "$dir/venue.out"); reconnects=$reconnects orders=$orders messages=$messages rss=$((rss_start / 1024))->$((rss_end / 1024)) MiB"
    total_reconnects=$((total_reconnects + reconnects)) total_faults=$((total_faults + faults))
    total_orders=$((total_orders + orders)) total_messages=$((total_messages + messages))
    figures+=" $p:$((rss_start / 1024))->$((rss_end / 1024))MiB"
done

# Nothing left: the processes, then (after teardown) the namespaces.
for pid in "${PIDS[@]}"; do
    ! kill -0 "$pid" 2>/dev/null || fail "process $pid still running"
done
for id in "${NETNS_IDS[@]}"; do ./scripts/netns.sh down "$id" >/dev/null; done
for id in "${NETNS_IDS[@]}"; do
    ! ip netns list | grep -qE "^hw[cs]-$id( |$)" || fail "namespace of set $id left"
    ! grep -qE "/hw[cs]-$id " /proc/mounts || fail "namespace mount of set $id left"
done
NETNS_IDS=()
echo "soak: passed: ${MINUTES} min, paths ${PATHS[*]}: reconnects=$total_reconnects faults=$total_faults orders=$total_orders messages=$total_messages rss$figures"
