#!/usr/bin/env bash
# Runs librdkafka's own integration test suite (tests/ of the librdkafka copy inside the
# rdkafka-sys crate, built by benches/build-librdkafka.sh --tests) against one oxka broker.
#
#   benches/librdkafka-suite.sh [--tier 1|2|3|all] [--quick] [TEST_ID...]
#
# The broker runs with num.partitions=4 and topic auto-creation on: librdkafka's "default" test
# scenario (tests/scenarios/default.json) configures its brokers that way and several tests
# produce to partitions 0..3 of an auto-created topic.
#
# Each test id runs on its own (TESTS=<id>, local-only tests skipped with -L, sequential -p1)
# against a single broker on a fresh data dir, with TEST_KAFKA_VERSION=3.9.0 so topics are
# created through the Admin API and version-gated tests run. The broker is restarted (and that
# recorded) if a test kills it.
#
# Full mode by default. --quick passes -Q to the runner, but beware: in quick mode every
# sub-test declared with SUB_TEST() (not SUB_TEST_QUICK()) returns at once and its test still
# reports PASSED (test.c test_sub_start), e.g. all of 0045's group sub-tests "pass" in 0.04 ms.
# Quick results therefore overstate what works; use them only as a smoke test.
#
# Output: $SUITE_OUT/results.tsv (id, result, seconds, variants, first failure) and one log per
# test in $SUITE_OUT/logs/. Exit code 0 whatever the results: this is a measurement.
#
# Env: OXKA_BIN          broker binary (default target/release/oxka)
#      OXKA_RDKAFKA_DIR  librdkafka test build (default /tmp/oxka-librdkafka-tests)
#      SUITE_OUT         results dir (default /tmp/oxka-librdkafka-suite)
#      PER_TEST_TIMEOUT  seconds per test id (default 900: 0113 alone takes ~10 minutes in full mode)
#      OXKA_OVERRIDES    extra broker settings, space-separated key=value. 0081's ACL sub-tests
#                        need an authorizer, as librdkafka's own test cluster has:
#                        OXKA_OVERRIDES="authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer allow.everyone.if.no.acl.found=true"
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

# Test ids from ../shared/compat/librdkafka-single-broker.txt (librdkafka tests meaningful against
# one plaintext broker), by tier.
TIER1="0001 0002 0003 0005 0007 0008 0011 0012 0013 0017 0021 0031 0034 0035 0036 0038 0039 0041
0042 0048 0053 0054 0057 0059 0063 0065 0067 0070 0073 0082 0085 0086 0110 0114 0123 0125 0127"
TIER2="0014 0015 0018 0019 0020 0022 0026 0029 0030 0033 0040 0045 0050 0051 0056 0060 0061 0064
0069 0083 0084 0089 0091 0093 0099 0102 0112 0113 0118 0122 0130 0132 0137 0140"
TIER3="0044 0081 0090 0129 0055 0049 0075 0076 0088 0094"

# Tests that skip themselves in quick mode (-Q): with --quick, these still run without -Q.
NO_QUICK=" 0082 "

IDS=()
TIER=1
QUICK=0
while [[ $# -gt 0 ]]; do
    case "$1" in
    --tier)
        TIER=$2
        shift 2
        ;;
    --quick)
        QUICK=1
        shift
        ;;
    *)
        IDS+=("$1")
        shift
        ;;
    esac
done
if [[ ${#IDS[@]} -eq 0 ]]; then
    case "$TIER" in
    1) read -r -a IDS <<<"$(echo $TIER1)" ;;
    2) read -r -a IDS <<<"$(echo $TIER2)" ;;
    3) read -r -a IDS <<<"$(echo $TIER3)" ;;
    all) read -r -a IDS <<<"$(echo $TIER1 $TIER2 $TIER3)" ;;
    *)
        echo "unknown tier $TIER" >&2
        exit 2
        ;;
    esac
fi

OXKA_BIN=$(realpath "${OXKA_BIN:-target/release/oxka}")
[[ -x "$OXKA_BIN" ]] || cargo build --release -p oxka
RDK=$(benches/build-librdkafka.sh --tests | tail -1)
OUT=${SUITE_OUT:-/tmp/oxka-librdkafka-suite}
PER_TEST_TIMEOUT=${PER_TEST_TIMEOUT:-900}
rm -rf "$OUT"
mkdir -p "$OUT/logs"
DATA=$(mktemp -d /tmp/oxka-suite-data.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BROKER_PID=

read -r -a EXTRA_OVERRIDES <<<"${OXKA_OVERRIDES:-}"
start_broker() {
    local extra=()
    for kv in "${EXTRA_OVERRIDES[@]}"; do extra+=(--override "$kv"); done
    "$OXKA_BIN" serve "${extra[@]}" \
        --override "listeners=PLAINTEXT://127.0.0.1:$PORT" \
        --override "advertised.listeners=PLAINTEXT://127.0.0.1:$PORT" \
        --override "log.dirs=$DATA/data" \
        --override num.partitions=4 \
        --override oxka.metrics.listen=none >>"$OUT/oxka.log" 2>&1 &
    BROKER_PID=$!
    for _ in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    echo "oxka did not start; see $OUT/oxka.log" >&2
    exit 1
}

stop_broker() {
    if [[ -n "$BROKER_PID" ]] && kill -0 "$BROKER_PID" 2>/dev/null; then
        kill "$BROKER_PID"
        for _ in $(seq 1 100); do
            kill -0 "$BROKER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$BROKER_PID" 2>/dev/null || true
    fi
}
trap 'stop_broker; rm -rf "$DATA"' EXIT

start_broker
cat >"$OUT/test.conf" <<EOF
bootstrap.servers=127.0.0.1:$PORT
EOF
echo "oxka $OXKA_BIN on 127.0.0.1:$PORT, librdkafka tests in $RDK/tests, results in $OUT" >&2

printf 'id\tresult\tseconds\tvariants\tfirst_failure\n' >"$OUT/results.tsv"
for id in "${IDS[@]}"; do
    log="$OUT/logs/$id.log"
    t0=$(date +%s)
    quick=
    [[ $QUICK == 1 && "$NO_QUICK" != *" $id "* ]] && quick=-Q
    set +e
    (
        cd "$RDK/tests"
        export LD_LIBRARY_PATH="../src:../src-cpp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        TESTS=$id TEST_KAFKA_VERSION=3.9.0 RDKAFKA_TEST_CONF="$OUT/test.conf" \
            timeout -k 10 "$PER_TEST_TIMEOUT" ./test-runner $quick -L -p1
    ) >"$log" 2>&1
    rc=$?
    set -e
    secs=$(($(date +%s) - t0))
    # Summary rows look like "| 0001_multiobj   |     PASSED |   1.234s | ..."
    rows=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E "^\| ${id}_" | awk -F'|' '{gsub(/ /,"",$2); gsub(/ /,"",$3); print $2":"$3}' | sort -u | paste -sd, - || true)
    if [[ $rc -eq 124 || $rc -eq 137 ]] || grep -q "timed out (timeout set to" "$log"; then
        result=TIMEOUT
    elif [[ -z "$rows" ]]; then
        result=$([[ $rc -eq 0 ]] && echo NOTRUN || echo FAILED)
    elif echo "$rows" | grep -q FAILED; then
        result=FAILED
    elif echo "$rows" | grep -q PASSED; then
        result=PASSED
    else
        result=SKIPPED
    fi
    why=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -A1 -m1 -E '^### Test .* failed at' | tail -1 | tr '\t' ' ' | cut -c1-300 || true)
    if ! kill -0 "$BROKER_PID" 2>/dev/null; then
        why="BROKER DIED; $why"
        start_broker
    fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$id" "$result" "$secs" "$rows" "$why" | tee -a "$OUT/results.tsv" >&2
done
echo "passed: $(grep -c $'\tPASSED\t' "$OUT/results.tsv" || true) of ${#IDS[@]}" >&2
cd "$REPO"
