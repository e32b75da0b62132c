"""Roll back by excluding the bad release: an exclusion of exactly that tag in the overlay's ImageRepository.

`rollback OVERLAY TAG` writes `rollback-<name>.yaml` beside the overlay's kustomization, a JSON6902 patch
that appends `^<tag, RE2-escaped>$` to the ImageRepository's `spec.exclusionList` (after setting the list to
Flux's default `^.*\\.sig$` first when the rendered object has none: a set list replaces the default), and
lists it under `patches:` with a target of kind and name (and namespace when the name alone is ambiguous).
The release policy then selects the previous good tag, the automation writes it back, and a later fixed
release flows as usual: nothing is held. `--undo` removes the entry, and the patch and its listing with
the last one. Files are edited line by line (`yamlblock`), so all other bytes stay as they were; the
overlay is rendered again after writing, and the files are restored unless Flux would see the intended list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from image_tagger.edges import manifests
from image_tagger.edges.registry.tags import RegistryTags
from image_tagger.fluxrules import automation, files, policy
from image_tagger.fluxrules.automation import ImageRepo
from image_tagger.fluxrules.files import read_named_file
from image_tagger.fluxrules.goports.goregex import GoRegexp
from image_tagger.model.errors import InputError, PublishError
from image_tagger.rules import yamlblock
from image_tagger.rules.naming import ACCEPTED_TAG, DOCKER_TAG

IMAGE_API = "image.toolkit.fluxcd.io/"
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
MAX_EXCLUSIONS = 25  # the ImageRepository CRD's maxItems
APPEND_PATH = "/spec/exclusionList/-"
SET_PATH = "/spec/exclusionList"
_GO_META = frozenset("\\.+*?()|[]{}^$")  # Go regexp.QuoteMeta's special characters


def quote_meta(text: str) -> str:
    """Go `regexp.QuoteMeta`: every RE2 metacharacter escaped with a backslash."""
    return "".join("\\" + ch if ch in _GO_META else ch for ch in text)


def exclusion_for(tag: str) -> str:
    """`^1\\.2\\.0$`: the exclusion that drops exactly `tag` (checked with Flux's regexp semantics)."""
    pattern = f"^{quote_meta(tag)}$"
    match = GoRegexp(pattern).search(tag)
    if match is None or match.group(0) != tag:
        raise InputError(f"TAG {tag!r}: no exclusion pattern matches exactly it")
    return pattern


@dataclass(frozen=True)
class Outcome:
    line: str  # what changed and what Flux will do
    changed: list[Path]


def kustomization_file(overlay: Path) -> Path:
    found = [overlay / name for name in KUSTOMIZATION_FILES if (overlay / name).is_file()]
    if not overlay.is_dir() or not found:
        raise InputError(
            f"OVERLAY {overlay} is not a kustomization (no kustomization.yaml); accepted: the kustomize folder "
            "whose build holds the ImageRepository"
        )
    return found[0]


def pick(repos: Sequence[ImageRepo], wanted: str | None, overlay: Path) -> ImageRepo:
    """The ImageRepository `--image` names (its name, namespace/name or spec.image), or the only one."""
    if not repos:
        raise InputError(f"OVERLAY {overlay} renders no ImageRepository; accepted: an overlay that includes flux-ci-cd")
    known = ", ".join(f"{r.key} ({r.image})" for r in repos)
    if wanted is None:
        if len(repos) > 1:
            raise InputError(f"OVERLAY {overlay} follows several images; pick one with --image, one of: {known}")
        return repos[0]
    chosen = [r for r in repos if wanted in (r.name, r.key, r.image)]
    if len(chosen) != 1:
        what = "matches no" if not chosen else "matches more than one"
        raise InputError(f"--image {wanted} {what} ImageRepository of {overlay}; accepted: one of {known}")
    return chosen[0]


def _patch_name(repo: ImageRepo, repos: Sequence[ImageRepo]) -> tuple[str, dict[str, str]]:
    """The patch file's name and its kustomize target; the namespace only when the name is ambiguous."""
    target = {"kind": "ImageRepository", "name": repo.name}
    if sum(r.name == repo.name for r in repos) > 1:
        target["namespace"] = repo.namespace
        return f"rollback-{repo.namespace}-{repo.name}.yaml", target
    return f"rollback-{repo.name}.yaml", target


def _listing(patch: str, target: Mapping[str, str]) -> str:
    fields = "".join(f"    {key}: {value}\n" for key, value in target.items())
    return f"- path: {patch}\n  target:\n{fields}"


def _append_op(pattern: str) -> str:
    return f"- op: add\n  path: {APPEND_PATH}\n  value: '{pattern}'\n"


def _new_patch(repo: ImageRepo, pattern: str) -> str:
    header = (
        f"# Rollback of ImageRepository {repo.key} ({repo.image}), written by `image-tagger rollback`:\n"
        "# Flux skips each tag excluded here, so its policies select the previous good one; a later release\n"
        "# flows as usual. `image-tagger rollback OVERLAY TAG --undo` takes a tag back out.\n"
    )
    start = ""
    if not repo.exclusions:  # a list of our own replaces Flux's default: keep the default in it
        default = ", ".join(f"'{p}'" for p in policy.DEFAULT_EXCLUSIONS)
        start = f"- op: add\n  path: {SET_PATH}\n  value: [{default}]\n"
    return header + start + _append_op(pattern)


def _read(path: Path) -> str:
    return read_named_file(path, str(path))


def _entry_index(kustomization: str, patch: str, source: str) -> int | None:
    for index, entry in enumerate(yamlblock.values(kustomization, "patches", source)):
        if isinstance(entry, dict) and entry.get("path") == patch:
            return index
    return None


def _appended(patch_text: str, source: str) -> list[str]:
    """The tag exclusions the patch appends, in order."""
    ops = yamlblock.values(patch_text, None, source)
    return [str(op.get("value")) for op in ops if isinstance(op, dict) and op.get("path") == APPEND_PATH]


def _write(overlay: Path, changes: Mapping[Path, str | None]) -> Callable[[], None]:
    """Write (or, for None, delete) every file of the overlay, all or none, leaving no temporary file behind
    (`files.write_all`); returns what puts them back the same way."""
    planned = [
        (path.name, path.read_bytes() if path.exists() else None, None if text is None else text.encode("utf-8"))
        for path, text in changes.items()
    ]
    _write_all(overlay, planned)
    return lambda: _write_all(overlay, [(name, after, before) for name, before, after in planned])


def _write_all(overlay: Path, planned: Sequence[tuple[str, bytes | None, bytes | None]]) -> None:
    try:
        files.write_all(overlay, planned)
    except files.FileError as err:
        raise files.FileError(f"OVERLAY {overlay}: {err}") from None


def _renders(expected: list[str]) -> Callable[[ImageRepo | None], str | None]:
    """A check that the rendered ImageRepository has exactly the exclusion list `expected`."""

    def wrong(rendered: ImageRepo | None) -> str | None:
        if rendered is not None and rendered.exclusions == expected:
            return None
        got = rendered.exclusions if rendered else "no such ImageRepository"
        return f"after the edit kustomize renders {got}, not {expected}"

    return wrong


def _verified(
    overlay: Path, changes: Mapping[Path, str | None], repo: ImageRepo, wrong: Callable[[ImageRepo | None], str | None]
) -> None:
    """Write the files, render again, and keep them only if `wrong` finds nothing wrong with the ImageRepository."""
    restore = _write(overlay, changes)
    try:
        found = automation.find_repositories(manifests.render(overlay))
    except InputError:
        restore()
        raise
    problem = wrong(next((r for r in found if r.key == repo.key), None))
    if problem:
        restore()
        raise PublishError(f"OVERLAY {overlay}: {problem}; files restored")


def _policies_after(
    objects: Sequence[Mapping[str, Any]], repo: ImageRepo, tags: Sequence[str], exclusions: Sequence[str]
) -> str:
    """`flux-system/app-production selects 1.1.0` for each ImagePolicy of the repository, with `exclusions`."""
    said = []
    after = policy.parse_exclusions(exclusions)
    for target in (t for t in automation.find_targets(objects) if t.repository == repo.key):
        prediction = automation.predict_one(replace(target, exclusions=after), tags)
        said.append(f"{target.key} selects {prediction.selected or f'nothing ({prediction.error})'}")
    return "; ".join(said) or "no ImagePolicy of the overlay reads it"


def run(overlay: Path, tag: str, image: str | None = None, undo: bool = False) -> Outcome:
    """Exclude `tag` from the overlay's ImageRepository (or, with `undo`, take the exclusion back out)."""
    if not DOCKER_TAG.fullmatch(tag):
        raise InputError(f"TAG {tag!r} is not an image tag; accepted: {ACCEPTED_TAG}")
    kustomization_path = kustomization_file(overlay)
    objects = manifests.render(overlay)
    repos = automation.find_repositories(objects)
    repo = pick(repos, image, overlay)
    if not repo.image:
        raise InputError(f"ImageRepository {repo.key} in {overlay} has no spec.image")
    pattern = exclusion_for(tag)
    patch, target = _patch_name(repo, repos)
    patch_path = overlay / patch
    kustomization = _read(kustomization_path)
    source = str(kustomization_path)
    yamlblock.load(kustomization, source)
    listed = _entry_index(kustomization, patch, source)
    patch_text = _read(patch_path) if patch_path.exists() else None
    if (patch_text is None) != (listed is None):
        state = "exists but is not listed" if listed is None else "is listed but missing"
        raise InputError(f"{patch_path} {state} under patches: in {kustomization_path}; fix that first")
    appended = _appended(patch_text, str(patch_path)) if patch_text is not None else []
    effective = repo.exclusions or list(policy.DEFAULT_EXCLUSIONS)
    if undo:
        return _undo(overlay, tag, repo, pattern, appended, kustomization, listed, patch_path, kustomization_path)

    try:
        blocking = repo.scan.excluding(tag)
    except policy.InvalidPolicy as err:  # Flux stalls on it too: fix the list before excluding more
        raise policy.InvalidPolicy(f"ImageRepository {repo.key} in {overlay} is invalid: {err}") from None
    if blocking is not None:
        raise InputError(f"TAG {tag} is already excluded from {repo.key} by the exclusion {blocking}; nothing changed")
    if len(effective) >= MAX_EXCLUSIONS:
        raise InputError(f"ImageRepository {repo.key} already has {len(effective)} exclusions; Flux allows 25")
    tags = RegistryTags().tags(repo)
    if tag not in tags:
        raise InputError(f"TAG {tag} is not a tag of {repo.image} in the registry; accepted: a tag it has")
    changes: dict[Path, str | None] = {}
    if patch_text is None:
        changes[patch_path] = _new_patch(repo, pattern)
        changes[kustomization_path] = yamlblock.append(kustomization, "patches", _listing(patch, target), source)
    else:
        changes[patch_path] = yamlblock.append(patch_text, None, _append_op(pattern), str(patch_path))
    expected = [*effective, pattern]
    _verified(overlay, changes, repo, _renders(expected))
    written = ", ".join(str(p) for p in changes)
    outlook = _policies_after(objects, repo, tags, expected)
    return Outcome(
        f"excluded {tag} from ImageRepository {repo.key} ({pattern}): wrote {written}; "
        f"once committed, Flux drops {tag} and {outlook}",
        list(changes),
    )


def _undo(
    overlay: Path,
    tag: str,
    repo: ImageRepo,
    pattern: str,
    appended: list[str],
    kustomization: str,
    listed: int | None,
    patch_path: Path,
    kustomization_path: Path,
) -> Outcome:
    if pattern not in appended:
        where = f"in {patch_path}" if listed is not None else f"({patch_path} does not exist)"
        raise InputError(f"TAG {tag} is not excluded by a rollback of {repo.key} {where}; nothing to undo")
    patch_text = _read(patch_path)
    ops = yamlblock.values(patch_text, None, str(patch_path))
    index = next(i for i, op in enumerate(ops) if op.get("path") == APPEND_PATH and str(op.get("value")) == pattern)
    changes: dict[Path, str | None] = {}
    if len(appended) == 1:  # without the patch: whatever the overlay sets, checked only for the pattern's absence
        changes[patch_path] = None
        changes[kustomization_path] = yamlblock.remove(kustomization, "patches", listed, str(kustomization_path))
        still = f"{pattern} is still rendered after the undo"
        _verified(overlay, changes, repo, lambda r: still if r is None or pattern in r.exclusions else None)
    else:
        changes[patch_path] = yamlblock.remove(patch_text, None, index, str(patch_path))
        _verified(overlay, changes, repo, _renders([p for p in repo.exclusions if p != pattern]))
    what = ", ".join(f"removed {p}" if text is None else f"wrote {p}" for p, text in changes.items())
    return Outcome(
        f"took {tag} back into ImageRepository {repo.key}: {what}; once committed, Flux considers {tag} again "
        f"(`image-tagger preview {overlay}` shows what its policies select)",
        list(changes),
    )
