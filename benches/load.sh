#!/usr/bin/env bash
# End-to-end load benchmark: builds librdkafka's rdkafka_performance from the rdkafka-sys crate
# source into a scratch dir (benches/build-librdkafka.sh), then runs benches/load.py against a
# fresh oxka and, with --mock, against librdkafka's in-process mock broker.
#
#   benches/load.sh [--mock] [--quick] [--repeat N] [--json FILE]
#
# Env: OXKA_BIN (default target/release/oxka, built with `cargo build --release -p oxka` if absent)
#      OXKA_RDKAFKA_DIR (scratch dir for librdkafka, default /tmp/oxka-librdkafka)
set -euo pipefail
cd "$(dirname "$0")/.."
OXKA_BIN=${OXKA_BIN:-target/release/oxka}
if [[ ! -x "$OXKA_BIN" ]]; then
    cargo build --release -p oxka
fi
RDK=$(benches/build-librdkafka.sh | tail -1)
exec timeout 3600 python3 benches/load.py --oxka "$OXKA_BIN" --perf "$RDK/examples/rdkafka_performance" "$@"
