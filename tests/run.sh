#!/usr/bin/env bash
# Runs every test on a fresh machine: installs what the tests need (kcat, the Python Kafka
# clients in a virtual environment, the Node clients), runs each tests/setup.d/*.sh (the JVM,
# Go and chart tooling; each one skips with a reason when its toolchain is missing), builds the
# broker, runs the Rust tests, then the real-client suite in tests/.
set -euo pipefail
cd "$(dirname "$0")/.."
export OXKA_REPO="$PWD"
# Tools that tests/setup.d builds or downloads (helm, kubeconform, promtool, Kafka jars): kept
# outside the clone so later clones on the same machine reuse them; a new machine builds them.
export OXKA_TOOLS="${OXKA_TOOLS:-$HOME/.cache/oxka-tools}"

if ! command -v kcat >/dev/null 2>&1; then
    echo "--- installing kcat"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq kcat >/dev/null
fi

# A virtual environment, so this also works where the system pip refuses (PEP 668).
VENV="${OXKA_VENV:-$PWD/target/venv}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "--- creating a Python virtual environment in $VENV"
    python3 -m venv "$VENV"
fi
echo "--- installing Python clients"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r tests/requirements.txt
export PATH="$VENV/bin:$PATH"

if [ -f tests/package.json ]; then
    if command -v npm >/dev/null 2>&1; then
        echo "--- installing Node clients"
        (cd tests && npm install --silent --no-audit --no-fund)
    else
        echo "--- skipping Node clients: npm is not installed (the kafkajs tests will skip)"
    fi
fi

for step in tests/setup.d/*.sh; do
    [ -e "$step" ] || continue
    echo "--- setup: $step"
    bash "$step"
done

echo "--- building"
cargo build --release --locked -p oxka
echo "--- Rust tests"
cargo test --release --locked --workspace
echo "--- real-client tests"
export OXKA_BIN="$PWD/target/release/oxka"
python -m pytest -q -p no:cacheprovider tests/ "$@"
