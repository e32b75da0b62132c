"""The package's layers, read from its own imports: each module imports only its layer and those below, and
no modules import each other in a loop. Every import counts: at the top, inside functions, and under
`if TYPE_CHECKING:` (a circle there is still a circle for the reader)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "image_tagger"
# Bottom up: a module may import from its own layer and from the layers before it.
LAYERS = (
    ("model",),
    ("fluxrules.goports",),
    ("fluxrules",),
    ("rules",),
    ("edges",),
    ("operations",),
    ("entry", "pullrequest", "demo"),
    ("__main__",),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py")}


def layer_of(module: str) -> int:
    inner = module.removeprefix("image_tagger.")
    best = None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            inside = inner == prefix or inner.startswith(prefix + ".")
            if inside and (best is None or len(prefix) > best[1]):  # the longest prefix: fluxrules.goports
                best = (index, len(prefix))
    assert best is not None, f"{module} is in no layer: add its folder to LAYERS"
    return best[0]


def imports_of(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules `module` imports (`from package import module` resolved to the module)."""
    found = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {name for name in found if name in known and name != module}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def test_every_import_points_down_or_across_its_layer() -> None:
    wrong = [
        f"{module} ({'/'.join(LAYERS[layer_of(module)])}) imports {target} ({'/'.join(LAYERS[layer_of(target)])})"
        for module, targets in graph().items()
        for target in sorted(targets)
        if layer_of(target) > layer_of(module)
    ]
    assert not wrong, "\n".join(wrong)


def test_no_modules_import_each_other_in_a_loop() -> None:
    edges = graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (loop := visit(target)):
                return loop
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (loop := visit(node)):
            pytest.fail("import circle: " + " -> ".join(loop))


def test_the_checks_see_a_violation(tmp_path: Path) -> None:
    """The walk resolves the forms the package uses, so a wrong import cannot slip past unseen."""
    path = tmp_path / "sample.py"
    path.write_text(
        "from typing import TYPE_CHECKING\n"
        "from image_tagger.rules import naming\n"
        "if TYPE_CHECKING:\n    from image_tagger.operations.publish import PublishResult\n"
        "def late():\n    from image_tagger.edges import notify\n"
    )
    known = modules()
    found = imports_of("image_tagger.model.sample", path, known)
    assert found == {"image_tagger.rules.naming", "image_tagger.operations.publish", "image_tagger.edges.notify"}
    assert all(layer_of(target) > layer_of("image_tagger.model.sample") for target in found)


def test_every_package_folder_is_in_the_wheel() -> None:
    """pyproject lists the packages by hand (two come from outside src/): a new folder left off that list installs
    from a checkout and breaks every wheel."""
    import tomllib

    listed = set(tomllib.loads((SRC.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {module_name(path) for path in PACKAGE.rglob("__init__.py")}
    folders |= {module_name(path.parent / "__init__.py") for path in PACKAGE.rglob("*.py")}
    assert folders - listed == set(), "add these packages to pyproject.toml's [tool.setuptools] packages"
