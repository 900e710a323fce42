#!/usr/bin/env bash
# The Go clients of tests/test_go_clients.py: franz-go and IBM sarama, pinned by tests/go/go.mod
# and go.sum. Builds tests/go into target/go-bin/oxka-go-client with the module and build caches
# under target/go. Skips, with the reason the Go tests print, when `go` is missing.
set -euo pipefail
REPO="${OXKA_REPO:-$(cd "$(dirname "$0")/../.." && pwd)}"
if ! command -v go >/dev/null 2>&1; then
    echo "skipping the Go clients: \`go\` is not installed (tests/test_go_clients.py will skip)"
    exit 0
fi
export GOMODCACHE="$REPO/target/go/mod" GOCACHE="$REPO/target/go/cache" GOFLAGS=-modcacherw
BIN="$REPO/target/go-bin/oxka-go-client"
cd "$REPO/tests/go"
if [ -x "$BIN" ] && [ -z "$(find . -newer "$BIN" -type f | head -1)" ]; then
    echo "Go clients ready: $BIN is up to date"
    exit 0
fi
echo "building tests/go into target/go-bin"
go build -mod=readonly -o "$BIN" .
echo "Go clients ready: $BIN"
