"""The naming contract: one git ref -> the image tags clusters rely on. Pure functions only.

- release: git tag `vMAJOR.MINOR.PATCH[-PRE]` (strict SemVer 2.0) -> `MAJOR.MINOR.PATCH[-PRE]`, which
  Flux semver policies select;
- branch: `<branch>-<sha>-<unix-seconds>`, which release policies ignore (not `MAJOR.MINOR.PATCH`:
  no two dots, or at most a prerelease for a branch named like a version) and a numerical policy on
  the timestamp orders;
- pull request: `pr-<number>-<sha>-<unix-seconds>`, built but not pushed by default.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from image_tagger.model.errors import InputError
from image_tagger.model.git import GitContext
from image_tagger.model.imagename import ImageName
from image_tagger.model.plan import NamingOptions, TagPlan
from image_tagger.model.states import PlanKind, PushMode

if TYPE_CHECKING:
    import semver

MAX_TAG = 128
_HEX = re.compile(r"[0-9a-fA-F]+")
ACCEPTED_TAG = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
DOCKER_TAG = re.compile(ACCEPTED_TAG)  # Docker's tag grammar, whatever made the tag
_ASCII_NUMBER = re.compile(r"[0-9]{1,9}")  # str.isdigit() also admits "²", which int() then refuses
_PR_REF = re.compile(r"refs/pull/([0-9]+)/(?:merge|head)")
_UNSAFE_RUN = re.compile(r"[^a-z0-9_.-]+")
_VERSION_LIKE = re.compile(r"v?[0-9]+\.[0-9]+")  # bare refs: `v1.2.3` (or a near miss, to refuse) is a tag


def parse_major(value: str | int | None) -> int | None:
    if value is None or value == "":
        return None
    text = str(value).strip().removeprefix("v")
    if not _ASCII_NUMBER.fullmatch(text) or (len(text) > 1 and text.startswith("0")):
        raise InputError(f"major-version {value!r} is not a major version; accepted: a number like 1, or empty")
    return int(text)


def parse_sha_length(value: str | int) -> int:
    text = str(value).strip()
    if not _ASCII_NUMBER.fullmatch(text) or not 4 <= int(text) <= 40:
        raise InputError(f"sha-length {value!r} is out of range; accepted: a number from 4 to 40")
    return int(text)


def parse_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    text = value.strip().lower()
    if text not in choices:
        raise InputError(f"{name} {value!r} is not accepted; accepted: {' | '.join(choices)}")
    return text


def release_version(tag: str, tag_prefix: str = "") -> semver.Version:
    """A git tag as a strict SemVer 2.0 version; anything else is an error, never a guess."""
    import semver  # only releases need it: a branch build starts its build without it

    if tag_prefix and not tag.startswith(tag_prefix):
        raise InputError(f"git tag {tag!r} does not start with tag-prefix {tag_prefix!r}")
    text = tag[len(tag_prefix) :]
    text = text[1:] if text.startswith("v") else text
    accepted = "vMAJOR.MINOR.PATCH[-PRERELEASE] (SemVer 2.0, no leading zeros), e.g. v1.4.2"
    if text != text.strip():
        raise InputError(f"git tag {tag!r} is not a release version; accepted: {accepted}")
    try:
        version = semver.Version.parse(text)
    except (ValueError, TypeError) as err:
        raise InputError(f"git tag {tag!r} is not a release version; accepted: {accepted}") from err
    if version.build:
        raise InputError(
            f"git tag {tag!r} has build metadata (+{version.build}), which a Docker tag cannot carry; "
            f"accepted: {accepted}"
        )
    if len(str(version)) > MAX_TAG:
        raise InputError(f"git tag {tag!r} gives an image tag longer than {MAX_TAG} characters, Docker's limit")
    return version


def short_sha(sha: str, length: int) -> str:
    if len(sha) < length or not _HEX.fullmatch(sha):
        raise InputError(f"sha {sha!r} is not a commit id; accepted: at least {length} hex digits")
    return sha[:length].lower()


def branch_slug(branch: str) -> str:
    """Lower-case, each run of characters Docker tags refuse becomes one `-`, no leading `.`/`-`."""
    return _UNSAFE_RUN.sub("-", branch.lower()).lstrip(".-")


def build_tag(prefix: str, sha: str, timestamp: int) -> str:
    """`<prefix>-<sha>-<timestamp>`, the prefix cut so the whole tag fits Docker's 128 characters."""
    suffix = f"-{sha}-{timestamp}"
    head = prefix[: MAX_TAG - len(suffix)]
    if not head:
        raise InputError(f"ref name {prefix!r} leaves nothing usable for a tag; accepted: [a-z0-9_.-]")
    return head + suffix


def choose_timestamp(
    ctx: GitContext, source: str, now: int, given: int | None = None
) -> tuple[int, str, str, tuple[str, ...]]:
    """The tag's timestamp, its kind and where it came from in words; push time keeps re-runs of one push identical."""
    if given is not None:
        return given, "given", "the timestamp given", ()
    candidates = {
        "push": (ctx.push_time, ctx.push_time_from or "the push time"),
        "commit": (ctx.commit_time, ctx.commit_time_from or "the commit time"),
        "build": (now, "the clock at build time"),
    }
    order = {"push": ("push", "commit", "build"), "commit": ("commit", "build"), "build": ("build",)}[source]
    for name in order:
        value, words = candidates[name]
        if value is not None:
            notes = () if name == source else (f"timestamp: no {source} time available, used {words}",)
            return value, name, words, notes
    raise AssertionError("build time is always available")


def _ref_kind(ctx: GitContext, tag_prefix: str) -> tuple[PlanKind, str]:
    """Classify the ref; a bare name is a tag only when it reads like a version (`v1.2…`, not `v2-rewrite`)."""
    ref = ctx.ref
    if m := _PR_REF.fullmatch(ref):
        return PlanKind.PULL_REQUEST, m.group(1)
    if ctx.event in ("pull_request", "pull_request_target"):
        return PlanKind.PULL_REQUEST, str(ctx.pr_number or "")
    if ref.startswith("refs/tags/"):
        return PlanKind.RELEASE, ref.removeprefix("refs/tags/")
    if ref.startswith("refs/heads/"):
        return PlanKind.BRANCH, ref.removeprefix("refs/heads/")
    if ref.startswith("refs/"):
        raise InputError(f"ref {ref!r} is not a branch, tag or pull request; accepted: refs/heads/*, refs/tags/*")
    bare = ref.removeprefix(tag_prefix) if tag_prefix else ref
    return (PlanKind.RELEASE if _VERSION_LIKE.match(bare) else PlanKind.BRANCH), ref


def plan_tags(ctx: GitContext, image: ImageName, options: NamingOptions, now: int) -> TagPlan:
    """Apply the contract to options rules.inputs has checked; every refusal is an InputError raised before
    anything is built."""
    kind, name = _ref_kind(ctx, options.tag_prefix)
    if kind == PlanKind.RELEASE:
        version = release_version(name, options.tag_prefix)
        if options.major_version is not None and version.major != options.major_version:
            raise InputError(
                f"git tag {name!r} is major {version.major} but major-version is {options.major_version}; "
                f"accepted: tags v{options.major_version}.x.y"
            )
        floating: tuple[str, ...] = ()
        if options.floating_tags and not version.prerelease:
            floating = (f"{version.major}.{version.minor}", str(version.major), "latest")
        return TagPlan(
            kind=kind,
            version=str(version),
            image=image,
            push=options.push != PushMode.FALSE,
            extra_tags=floating,
            notes=options.notes,
        )
    sha = short_sha(ctx.sha, options.sha_length)
    timestamp, used, words, stamp_notes = choose_timestamp(ctx, options.timestamp, now, options.timestamp_value)
    notes = (*options.notes, *stamp_notes)
    if kind == PlanKind.PULL_REQUEST:
        number = name
        if not number.isdigit():
            raise InputError("pull request number is missing; accepted: --pr-number N or a refs/pull/N/merge ref")
        version = build_tag(f"pr-{int(number)}", sha, timestamp)
        push = options.push == PushMode.TRUE
    else:
        version = build_tag(branch_slug(name), sha, timestamp)
        push = options.push != PushMode.FALSE
    if not DOCKER_TAG.fullmatch(version):  # whatever the inputs, never hand Docker a tag it refuses
        raise InputError(f"the tag {version[:60]!r}… is not a Docker tag; accepted: {ACCEPTED_TAG}")
    return TagPlan(
        kind=kind,
        version=version,
        image=image,
        push=push,
        timestamp=timestamp,
        timestamp_source=used,
        timestamp_from=words,
        notes=notes,
    )
