#!/usr/bin/env bash
# hotwire demo (the README's main job). Run as root on a fresh machine: installs what it needs,
# starts its own peers on loopback, shows the stack working, and stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

./scripts/peers.sh >/dev/null

WORK=$(mktemp -d /tmp/hotwire-demo.XXXXXX)
# config/demo.toml expects the venue's CA and writes its recording here.
DEMO_DIR=/tmp/hotwire-demo
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK" "$DEMO_DIR"
}
trap cleanup EXIT INT TERM

echo "== building hotwire (release)"
cargo build --release --quiet --features xdp,gateway --bin hotwire --examples

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "== a test CA and a server certificate for localhost"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=hotwire-demo-ca \
    -keyout "$WORK/ca.key" -out "$WORK/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -keyout "$WORK/server.key" -out "$WORK/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$WORK/san.ext"
openssl x509 -req -in "$WORK/server.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial \
    -days 2 -extfile "$WORK/san.ext" -out "$WORK/server.pem" 2>/dev/null

for backend in rustls openssl; do
    PORT=$(free_port)
    openssl s_server -quiet -accept "127.0.0.1:$PORT" -cert "$WORK/server.pem" -key "$WORK/server.key" \
        -rev -naccept 1 >/dev/null 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do ss -Hltn "sport = :$PORT" | grep -q . && break; sleep 0.05; done
    echo
    echo "== TLS session through hotwire ($backend) to openssl s_server -rev, recorded above TLS"
    ./target/release/examples/tls_session "127.0.0.1:$PORT" localhost "$WORK/ca.pem" "$backend" \
        "$WORK/session-$backend.hwr"
    echo
    echo "== hotwire replay session-$backend.hwr"
    ./target/release/hotwire replay "$WORK/session-$backend.hwr"
done
echo
echo "================ the appliance ================"
for port in 9001 9443 9080 9876; do
    if ss -Hltn "sport = :$port" | grep -q .; then
        echo "demo: port $port is taken (config/demo.toml uses 9001, 9443, 9080 and 9876); stop what holds it" >&2
        exit 1
    fi
done
rm -rf "$DEMO_DIR"
echo "== hotwire venue: the embedded exchange simulator (WebSocket feed + echo, plain and TLS; REST; FIX)"
./target/release/hotwire venue --tls --cert-dir "$DEMO_DIR" --rate 2000 \
    --http-listen 127.0.0.1:9080 --fix-listen 127.0.0.1:9876 &
PIDS+=($!)
for _ in $(seq 100); do [[ -s $DEMO_DIR/ca.pem ]] && ss -Hltn "sport = :9443" | grep -q . && break; sleep 0.05; done
echo
echo "== hotwire check config/demo.toml"
./target/release/hotwire check config/demo.toml || true
echo
echo "== hotwire run config/demo.toml --duration 10 (WebSocket, HTTP and FIX endpoints on one IO thread;"
echo "== TLS verified against the venue's CA)"
./target/release/hotwire run config/demo.toml --duration 10 --json "$DEMO_DIR/report.json"
echo
echo "== the JSON report ($DEMO_DIR/report.json), first endpoint"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(json.dumps(r["endpoints"][0], indent=2))' "$DEMO_DIR/report.json"
echo
echo "== hotwire replay $DEMO_DIR/feed-plain.hwr --limit 6 (the plain feed, recorded by the appliance)"
./target/release/hotwire replay "$DEMO_DIR/feed-plain.hwr" --limit 6
kill "${PIDS[@]}" 2>/dev/null || true
PIDS=()
echo
echo "================ kernel bypass: AF_XDP vs kernel TCP on a veth pair ================"
echo "== venue in one network namespace, hotwire run in the other: first over the userspace TCP"
echo "== stack on AF_XDP, then over kernel TCP, same endpoints, same veth"
HOTWIRE_BIN=$ROOT/target/release/hotwire ./scripts/demo-xdp.sh 8 10000
echo
echo "================ the gateway: strategies share the sessions over iceoryx2 ================"
HOTWIRE_BIN=$ROOT/target/release/hotwire STRATEGY_BIN=$ROOT/target/release/examples/strategy \
    ./scripts/demo-gateway.sh 200 2000
echo
echo "== demo finished; everything it started has been stopped"
