#!/usr/bin/env bash
# The full check, exactly as CI runs it (.ci/run). As root on a fresh machine:
#   1. scripts/peers.sh installs what is missing (Debian packages, the Python peers' venv, npm peers)
#   2. cargo fmt --check, clippy -D warnings on all targets, rustdoc -D warnings; scripts/features.sh:
#      the slim library's dependency tree, and clippy on each feature alone
#   3. cargo test: unit, integration (real peers; HOTWIRE_REQUIRE_PEERS=1 turns a missing peer into a
#      failure), doc tests; examples are built by cargo test too
#   4. scripts/fuzz-smoke.sh, if it exists
#   5. scripts/asan.sh: the unsafe modules' unit tests under AddressSanitizer (nightly only)
#   6. scripts/soak.sh 2: a 2-minute chaos soak on kernel TCP and AF_XDP (root only)
# Every process started here or by a test is stopped at the end, whatever happened (they carry
# HOTWIRE_RUN_ID in their environment, which finds them even after they left our process group), and
# every network namespace set created by this run is removed. Exits non-zero on any failure; the last
# line sums the test results.
#
# Knobs (CI sets none of them; the defaults are the real check):
#   HOTWIRE_CARGO_FEATURES  feature flags for every cargo step (default: --all-features), e.g.
#                           "--no-default-features --features ws" while a feature does not build yet
#   HOTWIRE_TEST_PROFILE    dev (default) or release: the profile `cargo test` builds
#   HOTWIRE_TEST_TIMEOUT    limit for the cargo test step (default 45m), so a hung test cannot eat CI
#   HOTWIRE_SKIP            steps to leave out, e.g. "fmt clippy" (names: peers fmt clippy features doc test fuzz asan soak)
#   HOTWIRE_CACHE / HOTWIRE_VENV  where peers live (default <repo>/.cache, <cache>/venv)
#   CARGO_TARGET_DIR, CARGO_BUILD_JOBS and the other cargo variables are respected as they are.
set -euo pipefail
cd "$(dirname "$0")/.."

read -ra FEATURES <<<"${HOTWIRE_CARGO_FEATURES:---all-features}"
PROFILE_ARGS=()
case ${HOTWIRE_TEST_PROFILE:-dev} in
dev) ;;
release) PROFILE_ARGS=(--release) ;;
*) echo "test.sh: HOTWIRE_TEST_PROFILE must be dev or release" >&2; exit 2 ;;
esac

RUN_ID=run-$$-$(date +%s)
export HOTWIRE_RUN_ID=$RUN_ID HOTWIRE_NETNS_OWNER=$RUN_ID
export HOTWIRE_REQUIRE_PEERS=1
export HOTWIRE_CACHE=${HOTWIRE_CACHE:-$PWD/.cache}
export HOTWIRE_VENV=${HOTWIRE_VENV:-$HOTWIRE_CACHE/venv}
LOG_DIR=$(mktemp -d)
# A CI build starts from nothing and is thrown away: incremental artifacts only cost time there.
[[ ${CI:-} != true ]] || export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

# Processes (other than this shell) whose environment carries this run's id.
run_pids() {
    local d pid
    for d in /proc/[0-9]*; do
        pid=${d#/proc/}
        [[ $pid == "$$" ]] && continue
        grep -qzx "HOTWIRE_RUN_ID=$RUN_ID" "$d/environ" 2>/dev/null && echo "$pid"
    done
    return 0
}

cleanup() {
    local rc=$? pids i
    trap - EXIT INT TERM
    # The scan below starts processes of its own: they must not carry the marker.
    unset HOTWIRE_RUN_ID
    pids=$(run_pids)
    if [[ -n $pids ]]; then
        echo "test.sh: stopping leftover processes: $(echo $pids)" >&2
        kill -TERM $pids 2>/dev/null || true
        for i in 1 2 3 4 5 6 7 8 9 10; do
            pids=$(run_pids)
            [[ -z $pids ]] && break
            sleep 0.2
        done
        [[ -z $pids ]] || kill -KILL $pids 2>/dev/null || true
    fi
    if [[ $(id -u) -eq 0 ]]; then
        ./scripts/netns.sh down-owner "$RUN_ID" 2>/dev/null || true
    fi
    rm -rf "$LOG_DIR"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

skipped() {
    [[ " ${HOTWIRE_SKIP:-} " == *" $1 "* ]] && { echo "=== $1: skipped (HOTWIRE_SKIP)"; return 0; }
    echo "=== $1"
    return 1
}

skipped peers || ./scripts/peers.sh
# Sets left by an earlier run that was killed before it could clean up.
[[ $(id -u) -ne 0 ]] || ./scripts/netns.sh down-stale

skipped fmt || cargo fmt --all -- --check
skipped clippy || cargo clippy --all-targets "${FEATURES[@]}" -- -D warnings
skipped features || ./scripts/features.sh
skipped doc || RUSTDOCFLAGS=-Dwarnings cargo doc --no-deps "${FEATURES[@]}"

passed=0 failed=0
if ! skipped test; then
    rc=0
    timeout -k 30 "${HOTWIRE_TEST_TIMEOUT:-45m}" \
        cargo test "${PROFILE_ARGS[@]}" "${FEATURES[@]}" 2>&1 | tee "$LOG_DIR/test.log" || rc=$?
    # Tests that count what a kernel thread does run alone, after the suite (#[ignore]d in it):
    # next to other tests on two cores they would measure those instead.
    if ((rc == 0)) && [[ " ${FEATURES[*]} " == *" --all-features "* ]]; then
        cargo test "${PROFILE_ARGS[@]}" "${FEATURES[@]}" --lib sqpoll_mode_makes_no_syscall -- \
            --ignored 2>&1 | tee -a "$LOG_DIR/test.log" || rc=$?
    fi
    # Sum cargo's per-binary "test result: ... N passed; M failed; ..." lines.
    while read -r p f; do
        passed=$((passed + p)) failed=$((failed + f))
    done < <(sed -n 's/^test result: .* \([0-9]\+\) passed; \([0-9]\+\) failed;.*/\1 \2/p' "$LOG_DIR/test.log")
    if ((rc != 0)); then
        ((rc != 124)) || echo "test.sh: cargo test exceeded ${HOTWIRE_TEST_TIMEOUT:-45m}" >&2
        ((failed > 0)) || echo "test.sh: cargo test failed before all tests ran (see above)" >&2
        echo "hotwire: $passed passed, $failed failed"
        exit "$rc"
    fi
fi

if ! skipped fuzz; then
    if [[ -x scripts/fuzz-smoke.sh ]]; then
        ./scripts/fuzz-smoke.sh
    else
        echo "(no scripts/fuzz-smoke.sh yet)"
    fi
fi

skipped asan || ./scripts/asan.sh

if ! skipped soak; then
    if [[ $(id -u) -ne 0 ]]; then
        echo "soak: needs root (network namespaces): skipped"
    else
        profile=${HOTWIRE_TEST_PROFILE:-dev}
        bin=$(realpath -m "${CARGO_TARGET_DIR:-target}/${profile/dev/debug}/hotwire")
        [[ -x $bin ]] || cargo build "${PROFILE_ARGS[@]}" "${FEATURES[@]}" --bin hotwire
        HOTWIRE_BIN=$bin ./scripts/soak.sh "${HOTWIRE_SOAK_MINUTES:-2}"
    fi
fi

echo "hotwire: $passed passed, $failed failed"
