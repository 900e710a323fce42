#!/usr/bin/env bash
# promtool (Prometheus's rule checker) for tests/test_metrics.py::test_rules_evaluate_against_a_scrape,
# built from the Go module proxy into $OXKA_TOOLS/go/bin (default ~/.cache/oxka-tools, shared by
# clones on one machine). Skips, with the reason recorded for the test,
# when Go is missing or the build fails. Uses $GOMODCACHE / $GOCACHE when the caller sets them
# (to share a module cache), else keeps everything under $OXKA_TOOLS/go. The first build
# downloads about 1.8 GB of modules and compiles for 10-20 minutes on 2 cores; OXKA_SKIP_PROMTOOL=1
# skips it (the rule evaluation test then skips; the rule-metrics-in-a-scrape check still runs).
set -euo pipefail
cd "${OXKA_REPO:-$(dirname "$0")/../..}"
VERSION=v0.316.0   # the module version of Prometheus 3.x's promtool
ROOT="${OXKA_TOOLS:-$HOME/.cache/oxka-tools}/go"
BIN="$ROOT/bin/promtool"
SKIP="$ROOT/promtool-skip-reason"
mkdir -p "$ROOT"
if [ -x "$BIN" ]; then
    rm -f "$SKIP"
    echo "promtool already built: $("$BIN" --version 2>&1 | head -1)"
    exit 0
fi
if [ -n "${OXKA_SKIP_PROMTOOL:-}" ]; then
    echo "promtool not built: OXKA_SKIP_PROMTOOL is set" | tee "$SKIP"
    exit 0
fi
if ! command -v go >/dev/null 2>&1; then
    echo "promtool not built: Go is not installed" | tee "$SKIP"
    exit 0
fi
export GOPATH="$ROOT" GOBIN="$ROOT/bin"
export GOMODCACHE="${GOMODCACHE:-$ROOT/pkg/mod}" GOCACHE="${GOCACHE:-$ROOT/cache}"
# -modcacherw: the module cache must stay deletable with rm -rf.
export GOFLAGS="${GOFLAGS:-} -modcacherw"
start=$(date +%s)
if go install "github.com/prometheus/prometheus/cmd/promtool@$VERSION"; then
    rm -f "$SKIP"
    echo "built promtool $VERSION in $(( $(date +%s) - start ))s"
else
    echo "promtool not built: go install github.com/prometheus/prometheus/cmd/promtool@$VERSION failed" | tee "$SKIP"
fi
exit 0
