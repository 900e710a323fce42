#!/usr/bin/env bash
# Builds librdkafka and examples/rdkafka_performance or (with --tests) librdkafka and its
# integration test runner from the copy of librdkafka that ships inside the `rdkafka-sys` crate,
# into a scratch directory. Nothing from librdkafka is kept in this repository: the crate source is located in (or
# fetched into) the cargo registry, copied to the scratch dir and built there.
#
#   benches/build-librdkafka.sh [--tests]      prints the build directory on its last line
#
# The benchmark build is an optimized release build (librdkafka's tests/README: "Performance
# tests and benchmarks should not use a development build"); the test build is configured with
# --enable-devel (extra client-side asserts), as librdkafka's own CI builds its test suite.
#
# Env: OXKA_RDKAFKA_DIR   scratch build dir (default /tmp/oxka-librdkafka, or
#                         /tmp/oxka-librdkafka-tests with --tests)
#      RDKAFKA_SYS_VERSION rdkafka-sys version requirement (default "4")
# Needs: gcc, g++, make, pkg-config; optional zstd/lz4/rapidjson headers (Debian: libzstd-dev
# liblz4-dev rapidjson-dev) for the compression and statistics tests.
set -euo pipefail

WANT_TESTS=0
[[ "${1:-}" == "--tests" ]] && WANT_TESTS=1
if [[ $WANT_TESTS == 1 ]]; then
    OUT=${OXKA_RDKAFKA_DIR:-/tmp/oxka-librdkafka-tests}
    CONFIGURE_EXTRA=--enable-devel
else
    OUT=${OXKA_RDKAFKA_DIR:-/tmp/oxka-librdkafka}
    CONFIGURE_EXTRA=
fi
REQ=${RDKAFKA_SYS_VERSION:-4}
CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}

find_src() {
    ls -d "$CARGO_HOME"/registry/src/*/rdkafka-sys-"$REQ".*/librdkafka 2>/dev/null | sort -V | tail -1
}

SRC=$(find_src || true)
if [[ -z "$SRC" ]]; then
    echo "fetching rdkafka-sys $REQ into the cargo registry" >&2
    scratch=$(mktemp -d)
    mkdir -p "$scratch/src"
    printf '[package]\nname = "fetch-rdkafka-sys"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\nrdkafka-sys = "%s"\n' "$REQ" >"$scratch/Cargo.toml"
    echo 'fn main() {}' >"$scratch/src/main.rs"
    (cd "$scratch" && timeout 600 cargo fetch >&2)
    rm -rf "$scratch"
    SRC=$(find_src)
fi
echo "librdkafka source: $SRC" >&2

if [[ ! -f "$OUT/.oxka-src" || "$(cat "$OUT/.oxka-src")" != "$SRC" ]]; then
    rm -rf "$OUT"
    cp -r "$SRC" "$OUT"
    chmod +x "$OUT/configure" "$OUT/lds-gen.py" "$OUT"/tests/*.sh "$OUT"/tests/*.py 2>/dev/null || true
    echo "$SRC" >"$OUT/.oxka-src"
fi

cd "$OUT"
if [[ ! -f Makefile.config ]]; then
    # No SSL/SASL-GSSAPI/curl: the benchmarks and the plaintext test tier do not need them.
    # shellcheck disable=SC2086
    timeout 600 ./configure --disable-ssl --disable-gssapi --disable-curl $CONFIGURE_EXTRA >&2
fi
timeout 1800 make -j"$(nproc)" libs >&2
if [[ $WANT_TESTS == 1 ]]; then
    timeout 1800 make -C tests -j"$(nproc)" test-runner >&2
else
    timeout 600 make -C examples rdkafka_performance >&2
fi
echo "$OUT"
