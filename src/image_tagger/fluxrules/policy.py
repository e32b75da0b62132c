"""Which tag Flux's ImagePolicy selects, decided offline exactly as image-reflector-controller does.

Covers the ImageRepository scan (exclusion list, stored order) and `applyPolicy`: policy factory
(semver > alphabetical > numerical), `filterTags` with `extract`, and the three "latest" rules.
A spec is parsed once (`parse_policy`, `parse_exclusions`) into frozen objects with every pattern
compiled, as Flux's controllers decode an object into its `api/v1` struct before acting on it: all
validation happens there, with the messages Flux's Stalled condition carries, and selecting never
reads the dict again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

from image_tagger.fluxrules.goports.goregex import GoRegexError, GoRegexp, go_expand
from image_tagger.fluxrules.goports.gostrconv import parse_go_float
from image_tagger.fluxrules.goports.mastersemver import (
    ConstraintError,
    Constraints,
    VersionError,
    compare,
    new_constraint,
    parse_version,
)
from image_tagger.fluxrules.imageref import ImageRef
from image_tagger.model.errors import InvalidPolicy, PolicyFailure

DEFAULT_EXCLUSIONS: tuple[str, ...] = (r"^.*\.sig$",)
# spec.digestReflectionPolicy, the CRD's enum; Never (the default) records no digest.
NEVER, IF_NOT_PRESENT, ALWAYS = "Never", "IfNotPresent", "Always"
REFLECTIONS = (NEVER, IF_NOT_PRESENT, ALWAYS)
_MAJOR_RANGE = re.compile(r"v?([0-9]+)(?:\.[xX*])*")


def _compile(pattern: Any, where: str) -> GoRegexp:
    if not isinstance(pattern, str):
        raise InvalidPolicy(f"{where}: must be a string (a Go RE2 regular expression)")
    try:
        return GoRegexp(pattern)
    except GoRegexError as err:
        raise InvalidPolicy(f"{where}: invalid regular expression pattern '{pattern}': {err}") from None


@dataclass(frozen=True)
class Exclusions:
    """An ImageRepository's exclusion list, each pattern compiled once."""

    patterns: tuple[str, ...]
    regexps: tuple[GoRegexp, ...] = field(repr=False, compare=False)

    @classmethod
    def compile(cls, patterns: Iterable[str]) -> Exclusions:
        patterns = tuple(patterns)
        return cls(patterns, tuple(_compile(p, "spec.exclusionList") for p in patterns))

    def excluding(self, tag: str) -> str | None:
        """The first pattern that drops `tag` (unanchored, as IRC matches), or None."""
        return next((p for p, r in zip(self.patterns, self.regexps, strict=True) if r.matches(tag)), None)

    def kept(self, tags: Iterable[str]) -> list[str]:
        """IRC filterOutTags: the tags no pattern matches."""
        return [tag for tag in tags if not any(r.matches(tag) for r in self.regexps)]

    def scan(self, tags: Iterable[str]) -> list[str]:
        """Tags as the ImageRepository stores them: the kept ones sorted descending byte-wise, the order a policy
        later reads them in (it decides semver ties)."""
        return sorted(self.kept(tags), reverse=True)  # str order is code-point order == Go's UTF-8 byte order


def parse_exclusions(patterns: Any) -> Exclusions:
    """`spec.exclusionList` as IRC applies it: None or empty means Flux's default list; every pattern must compile."""
    if patterns is not None and (isinstance(patterns, str) or not isinstance(patterns, Sequence)):
        raise InvalidPolicy("spec.exclusionList: must be a list of regular expressions")
    return Exclusions.compile(patterns) if patterns else _default_exclusions()


@cache
def _default_exclusions() -> Exclusions:
    """Flux's default list, compiled once for every repository that sets none."""
    return Exclusions.compile(DEFAULT_EXCLUSIONS)


def filter_out_tags(tags: Iterable[str], patterns: Sequence[str]) -> list[str]:
    """IRC filterOutTags: drop tags any pattern matches (unanchored); every pattern must compile."""
    return Exclusions.compile(patterns).kept(tags)


def scan_tags(tags: Iterable[str], exclusions: Sequence[str] | None = None) -> list[str]:
    """Tags as the ImageRepository stores them: exclusions applied (None/empty means the default list), sorted."""
    return parse_exclusions(exclusions).scan(tags)


def _semver_latest(constraints: Constraints, tags: Sequence[str]) -> str:
    best = None
    for tag in tags:
        try:
            version = parse_version(tag)
        except VersionError:
            continue
        if constraints.check(version) and (best is None or compare(version, best) > 0):
            best = version
    if best is None:
        raise PolicyFailure("unable to determine latest version from provided list")
    return best.original


def _alphabetical_latest(order: str, tags: Sequence[str]) -> str:
    return max(tags) if order == "ASC" else min(tags)


# Go strconv.ParseFloat (bitSize 64) syntax; hex needs a binary exponent, underscores are vetted after.
def _numerical_latest(order: str, tags: Sequence[str]) -> str:
    latest, best = "", 0.0
    for i, tag in enumerate(tags):
        try:
            value = parse_go_float(tag)
        except ValueError:
            raise PolicyFailure(f"failed to parse invalid numeric value '{tag}'") from None
        if i > 0 and ((order == "ASC" and value < best) or (order == "DESC" and value > best)):
            continue
        latest, best = tag, value
    return latest


def _go_upper(text: str) -> str:
    """Go strings.ToUpper maps rune by rune; keep characters whose uppercase is not a single rune."""
    return "".join(u if len(u := ch.upper()) == 1 else ch for ch in text)


def _field(spec: Mapping[str, Any], key: str) -> Any:
    """An optional string field; absent or null is Go's zero value ""."""
    value = spec.get(key)
    return "" if value is None else value


@dataclass(frozen=True)
class SemverChoice:
    """`spec.policy.semver`: the highest version the range admits (Masterminds constraints, parsed once)."""

    range: str
    constraints: Constraints = field(repr=False, compare=False)

    def latest(self, tags: Sequence[str]) -> str:
        return _semver_latest(self.constraints, tags)

    @property
    def major(self) -> int | None:
        """The one major a range such as `1.x` or `v2.*` follows; None for any other range."""
        wanted = _MAJOR_RANGE.fullmatch(self.range.strip())
        return int(wanted.group(1)) if wanted else None

    def describe(self) -> str:
        return self.range


@dataclass(frozen=True)
class OrderChoice:
    """`spec.policy.alphabetical` or `spec.policy.numerical`: the last tag in that order (`ASC`) or the first."""

    kind: Literal["alphabetical", "numerical"]
    order: Literal["ASC", "DESC"]
    written: str  # the order as the spec spells it, for people

    def latest(self, tags: Sequence[str]) -> str:
        return (_alphabetical_latest if self.kind == "alphabetical" else _numerical_latest)(self.order, tags)

    def describe(self) -> str:
        return f"{self.kind} {self.written or 'asc'}"


Choice = SemverChoice | OrderChoice


def _order(choice: Mapping[str, Any], where: str) -> tuple[Literal["ASC", "DESC"], str]:
    raw = _field(choice, "order")
    if not isinstance(raw, str):
        raise InvalidPolicy(f"{where}.order: must be a string, 'asc' or 'desc'")
    order = _go_upper(raw) or "ASC"
    if order == "ASC" or order == "DESC":
        return order, raw
    raise InvalidPolicy(f"{where}.order: invalid order '{raw}'; accepted: asc, desc")


def parse_choice(policy: Any) -> Choice:
    """The IRC policy factory: the first set member of semver, alphabetical, numerical decides."""
    if not isinstance(policy, Mapping):
        raise InvalidPolicy("spec.policy: must be a mapping with one of semver, alphabetical, numerical")
    for kind in ("semver", "alphabetical", "numerical"):
        choice = policy.get(kind)
        if choice is None:
            continue
        where = f"spec.policy.{kind}"
        if not isinstance(choice, Mapping):
            raise InvalidPolicy(f"{where}: must be a mapping")
        if kind != "semver":
            return OrderChoice(kind, *_order(choice, where))
        semver_range = _field(choice, "range")
        if not isinstance(semver_range, str):
            raise InvalidPolicy(f"{where}.range: must be a string such as '>=1.0.0 <2.0.0'")
        try:
            return SemverChoice(semver_range, new_constraint(semver_range))
        except ConstraintError as err:
            raise InvalidPolicy(f"{where}.range: {err}; accepted: a range such as '>=1.0.0 <2.0.0'") from None
    raise InvalidPolicy("spec.policy: no policy given; accepted: semver, alphabetical or numerical")


def filter_tags(regexp: GoRegexp, extract: str, tags: Iterable[str]) -> dict[str, str]:
    """IRC RegexFilter.Apply: first match per tag, key = tag or its `extract` expansion -> original tag.

    Later tags overwrite equal keys, as in Go; Go then iterates the map in random order, so a tie between
    candidates is nondeterministic in Flux while here it follows insertion order.
    """
    filtered: dict[str, str] = {}
    for tag in tags:
        if (m := regexp.search(tag)) is not None:
            filtered[go_expand(extract, m) if extract else tag] = tag
    return filtered


@dataclass(frozen=True)
class TagFilter:
    """`spec.filterTags`: the pattern compiled once (Go's RE2), and the `extract` template ("" keeps the tag)."""

    regexp: GoRegexp = field(repr=False, compare=False)
    pattern: str
    extract: str

    def apply(self, tags: Iterable[str]) -> dict[str, str]:
        return filter_tags(self.regexp, self.extract, tags)


def parse_filter(filter_spec: Any) -> TagFilter | None:
    """`spec.filterTags` as IRC's NewRegexFilter reads it; None when the spec has none."""
    if filter_spec is None:
        return None
    if not isinstance(filter_spec, Mapping):
        raise InvalidPolicy("spec.filterTags: must be a mapping with 'pattern' and optional 'extract'")
    pattern = _field(filter_spec, "pattern")
    regexp = _compile(pattern, "spec.filterTags.pattern")
    extract = _field(filter_spec, "extract")
    if not isinstance(extract, str):
        raise InvalidPolicy("spec.filterTags.extract: must be a string template such as '$ts'")
    return TagFilter(regexp, pattern, extract)


@dataclass(frozen=True)
class PolicySpec:
    """An ImagePolicy's spec parsed once, as Flux's controller holds it in `ImagePolicySpec`: every check
    done, every pattern compiled, so selecting, explaining and describing never read the dict again."""

    choice: Choice
    filter_tags: TagFilter | None = None
    reflection: str = NEVER  # spec.digestReflectionPolicy

    def select(self, stored: Sequence[str]) -> str:
        """IRC applyPolicy: the tag (as stored, never the extracted value) the policy resolves to.

        `stored` must be in stored order (see Exclusions.scan). Raises PolicyFailure.
        """
        if not stored:
            raise PolicyFailure("no tags in database")
        if self.filter_tags is None:
            return _latest(self.choice, stored)
        filtered = self.filter_tags.apply(stored)
        return filtered[_latest(self.choice, list(filtered))]

    def describe(self) -> str:
        """`1.x`, `numerical asc`: the policy in the fewest words."""
        return self.choice.describe()

    def why_ignored(self, tag: str) -> str:
        """A short reason the policy never picks `tag`, in the words a release manager uses."""
        if isinstance(self.choice, SemverChoice):
            try:
                version = parse_version(tag)
            except VersionError:
                return "ignored: not a release version"
            major = self.choice.major
            if major is not None and version.major != major:
                return "ignored: other major"
            if version.pre:
                return "ignored: prerelease"
        if self.filter_tags and self.filter_tags.pattern and not self.filter_tags.regexp.matches(tag):
            return "ignored: tag does not match the policy's filter"
        return "ignored: outside the policy's range"


def latest_ref(reflection: str, ref: ImageRef, previous: ImageRef | None, lookup: Callable[[], str | None]) -> ImageRef:
    """IRC updateImageRefs: `status.latestRef` once `ref` (name and selected tag) is chosen, given the one before.

    Never: no digest. IfNotPresent: the previous digest while name and tag stay, else `lookup()` (the registry's
    digest of name:tag). Always: `lookup()` every time. A lookup that finds no manifest (None) is Flux's "failed
    fetching digest" (PolicyFailure): the policy keeps its old ref and is not Ready.
    """
    if reflection == NEVER:
        return ImageRef(ref.name, ref.tag)
    if (
        reflection == IF_NOT_PRESENT
        and previous
        and previous.digest
        and (previous.name, previous.tag) == (ref.name, ref.tag)
    ):
        return previous
    digest = lookup()
    if not digest:
        raise PolicyFailure(f"failed fetching digest of {ref.name}:{ref.tag}: no manifest for the tag")
    return ImageRef(ref.name, ref.tag, digest)


def _latest(choice: Choice, candidates: Sequence[str]) -> str:
    if not candidates:
        raise PolicyFailure("no tag qualifies for this policy")  # Go: "version list argument cannot be empty"
    return choice.latest(candidates)


def _spec_mapping(spec: Any) -> Mapping[str, Any]:
    if not isinstance(spec, Mapping):
        raise InvalidPolicy("spec: must be a mapping with 'policy' and optional 'filterTags'")
    return spec


def parse_reflection(spec: Mapping[str, Any]) -> str:
    """`spec.digestReflectionPolicy` and `spec.interval` as the CRD admits them (its enum and two CEL rules): the
    API server refuses anything else, so Flux never acts on it."""
    reflection = spec.get("digestReflectionPolicy")
    if reflection is None:
        reflection = NEVER
    if reflection not in REFLECTIONS:
        raise InvalidPolicy(
            f"spec.digestReflectionPolicy: {reflection!r} is not accepted; accepted: Never, IfNotPresent, Always"
        )
    has_interval = spec.get("interval") is not None
    if has_interval and reflection != ALWAYS:
        raise InvalidPolicy("spec.interval is only accepted when spec.digestReflectionPolicy is set to 'Always'")
    if reflection == ALWAYS and not has_interval:
        raise InvalidPolicy("spec.interval must be set when spec.digestReflectionPolicy is set to 'Always'")
    return reflection


def parse_policy(spec: Any) -> PolicySpec:
    """Raise InvalidPolicy for whatever Flux would stall on (policy, then filterTags), else the typed spec."""
    spec = _spec_mapping(spec)
    return PolicySpec(parse_choice(spec.get("policy")), parse_filter(spec.get("filterTags")), parse_reflection(spec))


def select_tag(spec: Any, tags: Sequence[str]) -> str:
    """IRC applyPolicy on a spec as written, in IRC's order: the policy, then the tags, then filterTags.

    `tags` must be in stored order (see scan_tags). Raises InvalidPolicy or PolicyFailure.
    """
    spec = _spec_mapping(spec)
    choice = parse_choice(spec.get("policy"))
    if not tags:
        raise PolicyFailure("no tags in database")
    return PolicySpec(choice, parse_filter(spec.get("filterTags"))).select(tags)
