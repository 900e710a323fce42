#!/usr/bin/env bash
# Runs every test on a fresh machine: installs what the tests need (kcat, the Python Kafka
# clients), builds the broker, runs the Rust tests, then the real-client suite in tests/.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v kcat >/dev/null 2>&1; then
    echo "--- installing kcat"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq kcat >/dev/null
fi
echo "--- installing Python clients"
python3 -m pip install -q --disable-pip-version-check -r tests/requirements.txt
if [ -f tests/package.json ] && command -v npm >/dev/null 2>&1; then
    echo "--- installing Node clients"
    (cd tests && npm install --silent --no-audit --no-fund)
fi

echo "--- building"
cargo build --release --locked -p oxka
echo "--- Rust tests"
cargo test --release --locked --workspace
echo "--- real-client tests"
export OXKA_BIN="$PWD/target/release/oxka"
python3 -m pytest -q -p no:cacheprovider tests/ "$@"
