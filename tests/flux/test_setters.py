"""Setter behaviour from docs/flux-semantics.md §5 on the project's own manifests."""

import os
from pathlib import Path

import pytest

from image_tagger.fluxrules.files import FileError
from image_tagger.fluxrules.goports.yaml11 import is_non_string
from image_tagger.fluxrules.imageref import ImageRef, parse_policy_assignment
from image_tagger.fluxrules.setters import Change, plan_updates, write_updates
from image_tagger.model.errors import InputError

APP = "flux-system:app-production"
POLICIES = {APP: ImageRef("docker.io/acme/app", "1.4.2")}
DIGEST = "sha256:" + "ab" * 32


def marker(setter: str = APP) -> str:
    return f'# {{"$imagepolicy": "{setter}"}}'


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(text.encode())
    return root


def update_one(tmp_path: Path, text: str, policies: dict[str, ImageRef] = POLICIES, name: str = "m.yaml"):
    """Plan a single-file tree; the update for that file or None."""
    updates = plan_updates(write(tmp_path, {name: text}), policies)
    assert [u.path for u in updates] in ([], [name])
    return updates[0] if updates else None


YAML11_BOOLS = ["y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF"]
YAML11_BOOLS += ["true", "True", "TRUE", "false", "False", "FALSE"]


@pytest.mark.parametrize(
    "value",
    ["017", "0o17", "0x1F", "0b101", "+1", "1_000", "1.2", "1e3", ".inf", "~", "null", "a: b", "- x", "-"]
    + YAML11_BOOLS,
)
def test_yaml11_non_strings(value: str) -> None:
    assert is_non_string(value)


@pytest.mark.parametrize(
    "value", ["yEs", "2001-12-14", "1:20", "1.2.3", "v1.0.0", "sha256:abc", "ghcr.io/o/app:1.2.3", "", "1e400"]
)
def test_yaml11_strings(value: str) -> None:
    assert not is_non_string(value)


def test_deployment_image_touches_only_that_line(tmp_path: Path) -> None:
    before = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n"
        "      containers:\n      - name: app\n"
        f"        image: docker.io/acme/app:1.0.0 {marker()}\n"
    )
    update = update_one(tmp_path, before)
    assert update.after == before.replace("app:1.0.0", "app:1.4.2")
    assert update.changes == (Change(APP, "docker.io/acme/app:1.0.0", "docker.io/acme/app:1.4.2", 10),)
    assert update.reformat == ()
    assert update.diff() == (
        "--- a/m.yaml\n+++ b/m.yaml\n@@ -7,4 +7,4 @@\n     spec:\n       containers:\n       - name: app\n"
        f"-        image: docker.io/acme/app:1.0.0 {marker()}\n"
        f"+        image: docker.io/acme/app:1.4.2 {marker()}\n"
    )
    write_updates(tmp_path, [update])
    assert (tmp_path / "m.yaml").read_text() == update.after


@pytest.mark.parametrize(
    "source, tag, expected",
    [
        ("tag: v1", "1.1", 'tag: "1.1"'),  # YAML 1.1 float: quoted, tag forced to !!str
        ("tag: 1.0", "1.1", 'tag: "1.1"'),
        ("tag: 1.0", "1.1.0", "tag: !!float 1.1.0"),  # string value keeps the old node's tag
        ("tag: ~", "1.1", "tag: !!null 1.1"),
        ("tag: v1", "yes", 'tag: "yes"'),
        ("tag: 'v1'", "1.1", "tag: '1.1'"),
        ('tag: "v1"', "v2", 'tag: "v2"'),
        ("tag: v1", "2024-01-02", 'tag: "2024-01-02"'),  # a string to v2, a timestamp to v3
        ("tag: &t v1", "v2", "tag: &t v2"),
    ],
)
def test_quoting(tmp_path: Path, source: str, tag: str, expected: str) -> None:
    policies = {"ns:app": ImageRef("docker.io/acme/app", tag)}
    update = update_one(tmp_path, f"{source} {marker('ns:app:tag')}\n", policies)
    assert update.after == f"{expected} {marker('ns:app:tag')}\n"


def test_block_scalar_becomes_strip_chomped(tmp_path: Path) -> None:
    update = update_one(tmp_path, f"kind: A\nimage: | {marker()}\n  old\n  text\nnext: 1\n")
    assert update.after == f"kind: A\nimage: |- {marker()}\n  docker.io/acme/app:1.4.2\nnext: 1\n"
    assert update.changes[0].old == "old\ntext\n"


def test_digest_variants(tmp_path: Path) -> None:
    text = f"a: old {marker(APP + ':digest')}\nb: img {marker(APP)}\nc: x {marker(APP + ':name')}\n"
    without = update_one(tmp_path / "1", text)
    assert without.after.splitlines()[:1] == [f'a: "" {marker(APP + ":digest")}']  # no digest: empty string
    with_digest = update_one(tmp_path / "2", text, {APP: ImageRef("docker.io/acme/app", "1.4.2", DIGEST)})
    assert with_digest.after == (
        f"a: {DIGEST} {marker(APP + ':digest')}\nb: docker.io/acme/app:1.4.2@{DIGEST} {marker(APP)}\n"
        f"c: docker.io/acme/app {marker(APP + ':name')}\n"
    )


def test_sequence_item_head_comment(tmp_path: Path) -> None:
    text = f"images:\n{marker()}\n- old\n# two lines\n{marker()}\n- kept\n- {marker()}\n"
    update = update_one(tmp_path, text)
    assert update.after == text.replace("- old", "- docker.io/acme/app:1.4.2")


@pytest.mark.parametrize(
    "text",
    [
        f"image: old {marker()} trailing\n",  # text after the JSON object
        f"{marker()}\nimage: old\n",  # a comment above key: value belongs to the key
        f"image: old {marker('other-ns:app-production')}\n",  # other namespace: no such policy
        "image: old # {'$imagepolicy': 'flux-system:app-production'}\n",  # not JSON
        f"image: old {marker(APP + ':version')}\n",  # not a setter
        f"image: docker.io/acme/app:1.4.2 {marker()}\n",  # already current: no change, file not written
        f"- image: old {marker()}\n",  # top-level sequence: Flux cannot read the file
        f"a: 1\n--- x\nimage: old {marker()}\n",  # invalid document separator
    ],
)
def test_inert(tmp_path: Path, text: str) -> None:
    assert update_one(tmp_path, text) is None


def test_marker_spellings(tmp_path: Path) -> None:
    text = f'a: x #{{"$imagepolicy":"{APP}"}}\nb: x ## {{"$imagepolicy": "{APP}", "x": "y"}}\n'
    assert len(update_one(tmp_path, text).changes) == 2


def test_crlf_and_blank_lines_kept_with_reformat_note(tmp_path: Path) -> None:
    before = f"---\r\nkind: A\r\n\r\nspec:\r\n    image: old   {marker()}\r\n"
    update = update_one(tmp_path, before)
    assert update.after == before.replace("old", "docker.io/acme/app:1.4.2")
    assert set(update.reformat) == {
        "CRLF line endings become LF",
        "blank lines are removed",
        "an explicit '---' document start is dropped",
        "indentation is normalised to 2 spaces",
        "the space before a line comment becomes exactly one",
    }


def test_which_files_are_scanned(tmp_path: Path) -> None:
    line = f"image: old {marker()}\n"
    names = ["Kustomization", "a.yml", "b.yaml", ".github/c.yaml", "d.json", "e.YAML", "f.txt", "kustomization"]
    write(tmp_path / "real", {name: line for name in names} | {"g.yaml": "image: old # $imagepolicy\n"})
    os.symlink("missing.yaml", tmp_path / "real" / "dangling.yaml")
    os.symlink(tmp_path / "real" / ".github", tmp_path / "real" / "linked")
    updates = plan_updates(tmp_path / "real", POLICIES)
    assert [u.path for u in updates] == [".github/c.yaml", "Kustomization", "a.yml", "b.yaml"]


def test_multiple_documents_change_in_document_order(tmp_path: Path) -> None:
    text = f"kind: A\nimage: one {marker()}\n---\nkind: B\nimage: two {marker(APP + ':tag')}\n"
    update = update_one(tmp_path, text)
    assert [(c.old, c.new, c.line) for c in update.changes] == [
        ("one", "docker.io/acme/app:1.4.2", 2),
        ("two", "1.4.2", 5),
    ]
    assert update.reformat == ()


def test_write_refuses_a_file_changed_since_planning(tmp_path: Path) -> None:
    update = update_one(tmp_path, f"image: old {marker()}\n")
    (tmp_path / "m.yaml").write_text("image: edited\n")
    with pytest.raises(FileError, match="^m.yaml: changed since"):
        write_updates(tmp_path, [update])
    assert (tmp_path / "m.yaml").read_text() == "image: edited\n"


def test_parse_policy_assignment() -> None:
    assert parse_policy_assignment("flux-system:app=localhost:5000/acme/app:1.4.2") == (
        "flux-system:app",
        ImageRef("localhost:5000/acme/app", "1.4.2"),
    )
    key, ref = parse_policy_assignment(f"ns:app=docker.io/acme/app:1.4.2@{DIGEST}")
    assert (key, str(ref)) == ("ns:app", f"docker.io/acme/app:1.4.2@{DIGEST}")


@pytest.mark.parametrize(
    "text",
    [
        "ns:app",
        "ns/app=acme/app:1.0.0",
        "ns:app=localhost:5000/acme/app",
        "ns:app=acme/App:1.0.0",
        "ns:app=acme/app:1.0.0@sha256:short",
        "ns:app=acme/app:1.0.0@",
    ],
)
def test_parse_policy_assignment_rejects(text: str) -> None:
    with pytest.raises(InputError, match="expected NS:NAME=IMAGE:TAG") as error:
        parse_policy_assignment(text)
    assert "\n" not in str(error.value)


def test_invalid_policy_ref_fails_the_whole_run(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="bad tag"):
        plan_updates(tmp_path, {APP: ImageRef("docker.io/acme/app", "bad tag")})


def test_unchanged_marked_value_is_still_restyled_when_the_file_is_written(tmp_path: Path) -> None:
    """kyaml sets and formats every marked field; only old != new is recorded as a change."""
    policies = POLICIES | {"ns:x": ImageRef("acme/x", "1.0")}
    update = update_one(tmp_path, f"b: 1.0 {marker('ns:x:tag')}\nc: old {marker()}\n", policies)
    assert update.after == f'b: "1.0" {marker("ns:x:tag")}\nc: docker.io/acme/app:1.4.2 {marker()}\n'
    assert [c.setter for c in update.changes] == [APP]


def test_non_ascii_marked_values_are_strings_not_a_crash():
    assert is_non_string("1İ") is False
