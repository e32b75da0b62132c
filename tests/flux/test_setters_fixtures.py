"""Flux's own setter fixtures (tests/fixtures/flux-setters, cases in its CASES.md) reproduced byte for byte.

The rules behind them: docs/flux-semantics.md §5.
"""

import hashlib
import os
import re
import shutil
from pathlib import Path

import pytest

from image_tagger.fluxrules.imageref import ImageRef, parse_policy_assignment
from image_tagger.fluxrules.setters import Change, plan_updates, write_updates

from .conftest import SETTER_FIXTURES

DIGEST = "sha256:6745aaad46d795c9836632e1fb62f24b7e7f4c843144da8e47a5465c411a14be"
IAC = SETTER_FIXTURES / "image-automation-controller" / "internal"


def git_blob_id(path: Path) -> str:
    """`git hash-object PATH`: the id SOURCE.md records for each vendored file."""
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def test_vendored_fixtures_are_the_upstream_files() -> None:
    """Every file SOURCE.md lists is present and unmodified, and nothing unlisted sits beside them."""
    listed = re.findall(r"^\| `([0-9a-f]{40})` \| `([^`]+)` \|$", (SETTER_FIXTURES / "SOURCE.md").read_text(), re.M)
    assert len(listed) == 18
    root = SETTER_FIXTURES / "image-automation-controller"
    assert {(git_blob_id(root / path), path) for _, path in listed} == set(listed)
    present = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert present == sorted(path for _, path in listed)


def _tree(root: Path) -> dict[str, bytes]:
    """Regular files by relative path, ignoring dot-files and '*~' like testutil.ExpectMatchingDirectories."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink() and not path.name.startswith(".") and not path.name.endswith("~")
    }


def _copy(source: Path, target: Path, marker: str | None = None) -> Path:
    """Copy a fixture tree, replacing the SETTER_SITE placeholder the way Test_applyPolicies does."""
    shutil.copytree(source, target)
    if marker is not None:
        for path in target.rglob("*.yaml"):
            path.write_bytes(path.read_bytes().replace(b"SETTER_SITE", marker.encode()))
    return target


def test_update_with_setters(tmp_path: Path) -> None:
    """Case 1: TestUpdateWithSetters: only the changed files, byte-identical to expected/."""
    fixture = IAC / "update" / "testdata" / "setters"
    work = _copy(fixture / "original", tmp_path / "work")
    os.symlink("testing.yaml", work / "test.yaml")  # the dangling link upstream keeps in git
    policies = {
        "automation-ns:policy": ImageRef("index.repo.fake/updated", "v1.0.1"),
        "automation-ns:unchanged": ImageRef("image", "v1.0.0"),
        "automation-ns:policy-with-digest": ImageRef("image", "v1.0.0", DIGEST),
    }

    updates = plan_updates(work, policies)
    output = tmp_path / "output"  # upstream writes only changed files into an empty directory
    for update in updates:
        (output / update.path).parent.mkdir(parents=True, exist_ok=True)
        (output / update.path).write_text(update.after, encoding="utf-8", newline="")

    assert _tree(output) == _tree(fixture / "expected")
    assert all(update.reformat == () for update in updates)
    name = Change("automation-ns:policy:name", "replaced", "index.repo.fake/updated", 8)
    tag = Change("automation-ns:policy:tag", "v1", "v1.0.1", 9)
    changes = {update.path: update.changes for update in updates}
    assert changes == {
        "Kustomization": (name, tag),
        "kustomization.yml": (
            name,
            tag,
            Change("automation-ns:policy-with-digest:digest", "sha256:1234567890abcdef", DIGEST, 10),
            Change("automation-ns:policy-with-digest", "image", f"image:v1.0.0@{DIGEST}", 28),
        ),
        "marked.yaml": (Change("automation-ns:policy", "image:v1.0.0", "index.repo.fake/updated:v1.0.1", 14),),
    }
    assert list(changes) == sorted(changes)  # lexical walk order


@pytest.mark.parametrize("component", ["policy", "controller"])
@pytest.mark.parametrize(
    "assignments, target",
    [
        (["test-ns:policy1=helloworld:1.0.1"], "policy1"),
        (["test-ns:policy1=foo:1.1.1", "test-ns:policy2=helloworld:1.0.1", "test-ns:policy3=bar:2.2.2"], "policy2"),
    ],
    ids=["one-policy", "multiple-policies"],
)
def test_apply_policies_appconfig(tmp_path: Path, component: str, assignments: list[str], target: str) -> None:
    """Cases 2 and 4: appconfig -> appconfig-setters-expected, work dir updated in place."""
    testdata = IAC / component / "testdata"
    marker = f'{{"$imagepolicy": "test-ns:{target}"}}'  # Go: {"%s": "%s:%s"}
    work = _copy(testdata / "appconfig", tmp_path / "work", marker)
    expected = _copy(testdata / "appconfig-setters-expected", tmp_path / "expected", marker)

    updates = plan_updates(work, dict(parse_policy_assignment(text) for text in assignments))
    write_updates(work, updates)

    assert _tree(work) == _tree(expected)
    assert [(u.path, u.changes, u.reformat) for u in updates] == [
        ("deploy.yaml", (Change(f"test-ns:{target}", "helloworld:1.0.0", "helloworld:1.0.1", 10),), ())
    ]


@pytest.mark.parametrize("component", ["policy", "controller"])
def test_apply_policies_update_path(tmp_path: Path, component: str) -> None:
    """Case 3 (and 4's pathconfig, whose expected tree is the policy one): only ./yes is scanned."""
    testdata = IAC / component / "testdata"
    marker = '{"$imagepolicy": "test-ns:policy1"}'
    work = _copy(testdata / "pathconfig", tmp_path / "work", marker)
    expected = _copy(IAC / "policy" / "testdata" / "pathconfig-expected", tmp_path / "expected", marker)

    updates = plan_updates(work / "yes", dict([parse_policy_assignment("test-ns:policy1=helloworld:1.0.1")]))
    write_updates(work / "yes", updates)

    assert _tree(work) == _tree(expected)
    assert [u.path for u in updates] == ["deploy.yaml"]  # relative to the update path, not the checkout
