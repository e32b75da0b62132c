"""Kubernetes objects read from YAML: one loader for rendered overlays, folders of manifests and single files.

Every multi-document read goes through `load_documents`, which bounds the nesting depth first (the
loader recurses per level, so a document nested thousands deep would otherwise end in a RecursionError).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML, YAMLError
from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent

from image_tagger.edges import kustomize
from image_tagger.fluxrules.files import read_named_file
from image_tagger.fluxrules.yamltree import MAX_YAML_DEPTH  # one limit for every YAML the tools read
from image_tagger.model.errors import InputError

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def check_depth(text: str, source: str, limit: int = MAX_YAML_DEPTH) -> None:
    """Refuse YAML nested deeper than `limit`, reading the event stream (which does not recurse)."""
    depth = 0
    for event in YAML(typ="safe").parse(text):
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > limit:
                raise InputError(f"{source}: YAML nested deeper than {limit} levels; accepted: Kubernetes manifests")
        elif isinstance(event, CollectionEndEvent):
            depth -= 1


def load_documents(text: str, source: str) -> list[dict[str, Any]]:
    """The mappings of a multi-document YAML text; anything unreadable is an InputError naming `source`."""
    try:
        check_depth(text, source)
        return [doc for doc in YAML(typ="safe").load_all(text) if isinstance(doc, dict)]
    except YAMLError as err:
        raise InputError(f"{source}: not valid YAML ({str(err).splitlines()[0]})") from err


def load_file(path: Path, source: str) -> list[dict[str, Any]]:
    return load_documents(read_named_file(path, source), source)


def is_kustomization(path: Path) -> bool:
    return path.is_dir() and any((path / name).is_file() for name in KUSTOMIZATION_FILES)


def kustomize_build(directory: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize DIR` (or kustomize) as objects; raises CalledProcessError when kustomize fails."""
    return load_documents(kustomize.kustomize_output(directory), f"{directory} (rendered)")


def render(overlay: Path) -> list[dict[str, Any]]:
    """An overlay as objects, every failure an InputError naming the overlay."""
    try:
        return kustomize_build(overlay)
    except OSError as err:
        raise InputError(f"overlay {overlay}: cannot run kustomize ({err})") from err
    except subprocess.CalledProcessError as err:
        reason = (err.stderr or "").strip().splitlines() or [f"exit code {err.returncode}"]
        raise InputError(f"overlay {overlay}: kustomize failed: {reason[-1]}") from err


def load_objects(path: Path) -> list[dict[str, Any]]:
    """Objects of a rendered file, a kustomize overlay (rendered here) or a folder of plain manifests."""
    if is_kustomization(path):
        return render(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    elif path.exists():  # a FIFO or device too: load_file refuses it by name
        files = [path]
    else:
        raise InputError(f"overlay {path} does not exist; accepted: a kustomize overlay, a folder or a YAML file")
    return [obj for file in files for obj in load_file(file, f"overlay file {file}")]
