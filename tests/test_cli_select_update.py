"""`image-tagger select` and `image-tagger update` as real processes, on this project's own Flux files."""

from __future__ import annotations

import difflib
import re
import shutil
from pathlib import Path

import pytest
from support.cli import assert_input_error, explain, run_cli

REPO = Path(__file__).resolve().parents[1]
RELEASE_POLICY = REPO / "flux" / "image-policy.yaml"
STAGING_POLICY = REPO / "flux" / "staging" / "image-policy.yaml"
APPS = REPO / "kustomize" / "apps"
TAGS = ["1.0.0", "1.4.2", "1.5.0-rc.1", "2.0.0", "main-3f2c1a9-1764110000"]
# Newer by timestamp, older by alphabet: a policy that sorts the whole tag would pick the other one.
MAIN_BUILDS = ["main-0b1c2d3-1764200000", "main-9e8d7c6-1764150000"]
PRODUCTION_SETTER = "flux-system:app-production"
MARKED_VALUE = re.compile(r"(?P<key>image: )(?P<value>\S+)(?P<rest> #.*)")


def write_tags(folder: Path, tags: list[str]) -> Path:
    path = folder / "tags.txt"
    path.write_text("".join(f"{tag}\n" for tag in tags))
    return path


def select(policy: Path, tags: Path, *extra: str):
    return run_cli("select", "--policy", str(policy), "--tags", str(tags), *extra)


# --- select ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "tags", "expected"),
    [
        (RELEASE_POLICY, TAGS, "1.4.2"),
        (STAGING_POLICY, TAGS + MAIN_BUILDS, "main-0b1c2d3-1764200000"),
    ],
    ids=["production", "staging"],
)
def test_project_policies_select_as_flux(policy: Path, tags: list[str], expected: str, tmp_path: Path) -> None:
    done = select(policy, write_tags(tmp_path, tags))
    assert (done.returncode, done.stdout) == (0, f"{expected}\n"), explain(done)


def test_nothing_qualifies_is_exit_1_with_empty_stdout(tmp_path: Path) -> None:
    done = select(RELEASE_POLICY, write_tags(tmp_path, ["2.0.0", "1.5.0-rc.1", "main-3f2c1a9-1764110000"]))
    assert (done.returncode, done.stdout) == (1, ""), explain(done)
    assert len(done.stderr.splitlines()) == 1, explain(done)


@pytest.mark.parametrize(
    ("manifest", "named"),
    [
        ("kind: ImagePolicy\nspec:\n  policy:\n    semver:\n      range: not a range\n", "spec.policy.semver.range"),
        (
            "kind: ImagePolicy\nspec:\n  filterTags:\n    pattern: '(['\n  policy:\n    alphabetical: {}\n",
            "spec.filterTags.pattern",
        ),
        ("kind: ImagePolicy\nspec:\n  imageRepositoryRef:\n    name: app\n", "spec.policy"),
        ("kind: ImagePolicy\nspec: [unclosed\n", "not valid YAML"),
    ],
    ids=["bad-range", "bad-regex", "no-spec-policy", "not-yaml"],
)
def test_invalid_policy_is_input_error(manifest: str, named: str, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(manifest)
    assert_input_error(select(policy, write_tags(tmp_path, TAGS)), named)


ALPHABETICAL = "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nspec:\n  policy:\n    alphabetical: {}\n"
REPOSITORY_EXCLUDING_5_AND_9 = (
    "---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\n"
    "spec:\n  image: acme/app\n  exclusionList: ['^5', '^9']\n"
)


@pytest.mark.parametrize(
    ("manifest", "extra", "expected"),
    [
        (ALPHABETICAL, [], "5.0.0"),  # the default list drops the signature tag
        (ALPHABETICAL, ["--exclude", "^5"], "9.9.9.sig"),  # ... and --exclude replaces it
        (ALPHABETICAL + REPOSITORY_EXCLUDING_5_AND_9, [], "1.0.0"),  # the file's ImageRepository replaces it
        (ALPHABETICAL + REPOSITORY_EXCLUDING_5_AND_9, ["--exclude", "^1"], "9.9.9.sig"),  # the flag wins
    ],
    ids=["default", "exclude-flag", "repository-list", "flag-over-repository"],
)
def test_exclusions(manifest: str, extra: list[str], expected: str, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(manifest)
    done = select(policy, write_tags(tmp_path, ["1.0.0", "9.9.9.sig", "5.0.0"]), *extra)
    assert (done.returncode, done.stdout) == (0, f"{expected}\n"), explain(done)


# --- update ----------------------------------------------------------------------------------------------


def copy_apps(dest: Path) -> Path:
    return Path(shutil.copytree(APPS, dest))


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def marked_line(text: str, setter: str) -> int:
    [index] = [i for i, line in enumerate(text.splitlines()) if f'"{setter}"' in line]
    return index


def test_update_changes_only_the_marked_tag(tmp_path: Path) -> None:
    apps = copy_apps(tmp_path / "apps")
    before = tree(apps)

    done = run_cli("update", str(apps), "--policy", f"{PRODUCTION_SETTER}=docker.io/acme/app:1.4.2")

    assert (done.returncode, done.stdout) == (0, "production/image.yaml\n"), explain(done)
    after = tree(apps)
    assert {k: v for k, v in after.items() if k != "production/image.yaml"} == {
        k: v for k, v in before.items() if k != "production/image.yaml"
    }
    old, new = before["production/image.yaml"].decode(), after["production/image.yaml"].decode()
    index = marked_line(old, PRODUCTION_SETTER)
    old_lines, new_lines = old.splitlines(True), new.splitlines(True)
    expected = MARKED_VALUE.sub(r"\g<key>docker.io/acme/app:1.4.2\g<rest>", old_lines[index])
    assert expected != old_lines[index]
    assert new_lines == [*old_lines[:index], expected, *old_lines[index + 1 :]]


def test_dry_run_prints_the_diff_and_writes_nothing(tmp_path: Path) -> None:
    dry, real = copy_apps(tmp_path / "dry"), copy_apps(tmp_path / "real")
    assignment = f"{PRODUCTION_SETTER}=docker.io/acme/app:1.4.2"
    original = tree(dry)

    done = run_cli("update", str(dry), "--policy", assignment, "--dry-run")
    assert run_cli("update", str(real), "--policy", assignment).returncode == 0

    assert done.returncode == 0, explain(done)
    assert tree(dry) == original
    name = "production/image.yaml"
    expected = difflib.unified_diff(
        (dry / name).read_text().splitlines(True), (real / name).read_text().splitlines(True), f"a/{name}", f"b/{name}"
    )
    assert done.stdout == "".join(expected)
    assert "1.4.2" in done.stdout


def test_file_outside_flux_normal_form_gets_a_note(tmp_path: Path) -> None:
    apps = copy_apps(tmp_path / "apps")
    odd = apps / "odd.yaml"
    odd.write_text('spec:\n    image: docker.io/acme/app:1.0.0   # {"$imagepolicy": "flux-system:app-production"}\n')

    done = run_cli("update", str(apps), "--policy", f"{PRODUCTION_SETTER}=docker.io/acme/app:1.4.2")

    assert done.returncode == 0, explain(done)
    assert "odd.yaml" in done.stdout.splitlines()
    noted = re.findall(r"^note: Flux would also reformat (\S+): ", done.stderr, re.MULTILINE)
    assert noted == ["odd.yaml"], explain(done)  # the project's own files are in normal form
    assert "docker.io/acme/app:1.4.2   #" in odd.read_text()


@pytest.mark.parametrize(
    "assignment",
    [
        "flux-system:app-production",  # no '='
        "flux-system:app-production=docker.io/acme/app",  # no tag
        "Flux_System:app=docker.io/acme/app:1.4.2",  # not a namespace
        "flux-system:app=docker.io/acme/app:1.4.2@sha256:nothex",  # not a digest
    ],
)
def test_bad_policy_assignment_is_input_error(assignment: str, tmp_path: Path) -> None:
    apps = copy_apps(tmp_path / "apps")
    before = tree(apps)
    assert_input_error(run_cli("update", str(apps), "--policy", assignment), "policy")
    assert tree(apps) == before


def test_update_path_must_be_a_folder(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    assert_input_error(run_cli("update", str(missing), "--policy", f"{PRODUCTION_SETTER}=a/b:1"), str(missing))
