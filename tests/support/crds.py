"""The Flux CRD schemas vendored under tests/crds (provenance and blob ids in tests/crds/SOURCE.md)."""

import hashlib
import re
from pathlib import Path
from typing import Any

import jsonschema
from ruamel.yaml import YAML

CRDS = Path(__file__).resolve().parents[1] / "crds"


def crd_schemas() -> dict[tuple[str, str, str], dict[str, Any]]:
    """(group, version, kind) -> openAPIV3Schema of every served version in tests/crds (a missing file fails)."""
    listed = re.findall(r"^\| `([^`]+\.yaml)` \|.*\| `([0-9a-f]{40})` \|$", (CRDS / "SOURCE.md").read_text(), re.M)
    assert len(listed) == 6, "tests/crds/SOURCE.md lists the six Flux CRDs"
    schemas = {}
    for name, blob_id in listed:
        path = CRDS / name
        data = path.read_bytes()
        assert hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == blob_id, f"{path} differs from upstream"
        crd = YAML(typ="safe").load(path.read_text())
        for version in crd["spec"]["versions"]:
            if version["served"]:
                key = (crd["spec"]["group"], version["name"], crd["spec"]["names"]["kind"])
                schemas[key] = version["schema"]["openAPIV3Schema"]
    return schemas


def validate_against_crd(schemas: dict[tuple[str, str, str], dict[str, Any]], obj: dict[str, Any]) -> None:
    """jsonschema ignores the x-kubernetes-* keywords (CEL rules, list types); the rest is plain schema."""
    group, version = obj["apiVersion"].split("/")
    key = (group, version, obj["kind"])
    assert key in schemas, f"{obj['apiVersion']} {obj['kind']} is not served by the Flux CRDs"
    jsonschema.Draft7Validator(schemas[key]).validate(obj)
