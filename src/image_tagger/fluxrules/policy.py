"""Which tag Flux's ImagePolicy selects, decided offline exactly as image-reflector-controller does.

Covers the ImageRepository scan (exclusion list, stored order) and `applyPolicy`: policy factory
(semver > alphabetical > numerical), `filterTags` with `extract`, and the three "latest" rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any

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
from image_tagger.model.errors import InvalidPolicy, PolicyFailure

DEFAULT_EXCLUSIONS: tuple[str, ...] = (r"^.*\.sig$",)


Policer = Callable[[Sequence[str]], str]


def _compile(pattern: Any, field: str) -> GoRegexp:
    if not isinstance(pattern, str):
        raise InvalidPolicy(f"{field}: must be a string (a Go RE2 regular expression)")
    try:
        return GoRegexp(pattern)
    except GoRegexError as err:
        raise InvalidPolicy(f"{field}: invalid regular expression pattern '{pattern}': {err}") from None


def filter_out_tags(tags: Iterable[str], patterns: Sequence[str]) -> list[str]:
    """IRC filterOutTags: drop tags any pattern matches (unanchored); every pattern must compile."""
    regexps = [_compile(p, "spec.exclusionList") for p in patterns]
    return [tag for tag in tags if not any(r.matches(tag) for r in regexps)]


def scan_tags(tags: Iterable[str], exclusions: Sequence[str] | None = None) -> list[str]:
    """Tags as the ImageRepository stores them: exclusions applied (None/empty means the default list),
    then sorted descending byte-wise, the order a policy later reads them in (it decides semver ties)."""
    kept = filter_out_tags(tags, exclusions or DEFAULT_EXCLUSIONS)
    return sorted(kept, reverse=True)  # str order is code-point order == Go's UTF-8 byte order


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


def _order(choice: Mapping[str, Any], field: str) -> str:
    raw = _field(choice, "order")
    if not isinstance(raw, str):
        raise InvalidPolicy(f"{field}.order: must be a string, 'asc' or 'desc'")
    order = _go_upper(raw) or "ASC"
    if order not in ("ASC", "DESC"):
        raise InvalidPolicy(f"{field}.order: invalid order '{raw}'; accepted: asc, desc")
    return order


def build_policer(policy: Any) -> Policer:
    """The IRC policy factory: the first set member of semver, alphabetical, numerical decides."""
    if not isinstance(policy, Mapping):
        raise InvalidPolicy("spec.policy: must be a mapping with one of semver, alphabetical, numerical")
    for kind in ("semver", "alphabetical", "numerical"):
        choice = policy.get(kind)
        if choice is None:
            continue
        field = f"spec.policy.{kind}"
        if not isinstance(choice, Mapping):
            raise InvalidPolicy(f"{field}: must be a mapping")
        if kind != "semver":
            latest = _alphabetical_latest if kind == "alphabetical" else _numerical_latest
            return partial(latest, _order(choice, field))
        semver_range = _field(choice, "range")
        if not isinstance(semver_range, str):
            raise InvalidPolicy(f"{field}.range: must be a string such as '>=1.0.0 <2.0.0'")
        try:
            return partial(_semver_latest, new_constraint(semver_range))
        except ConstraintError as err:
            raise InvalidPolicy(f"{field}.range: {err}; accepted: a range such as '>=1.0.0 <2.0.0'") from None
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


def _latest(policer: Policer, candidates: Sequence[str]) -> str:
    if not candidates:
        raise PolicyFailure("no tag qualifies for this policy")  # Go: "version list argument cannot be empty"
    return policer(candidates)


def select_tag(spec: Mapping[str, Any], tags: Sequence[str]) -> str:
    """IRC applyPolicy: the tag (as stored, never the extracted value) an ImagePolicy resolves to.

    `tags` must be in stored order (see scan_tags). Raises InvalidPolicy or PolicyFailure.
    """
    if not isinstance(spec, Mapping):
        raise InvalidPolicy("ImagePolicy spec: must be a mapping with 'policy' and optional 'filterTags'")
    policer = build_policer(spec.get("policy"))
    if not tags:
        raise PolicyFailure("no tags in database")
    filter_spec = spec.get("filterTags")
    if filter_spec is None:
        return _latest(policer, tags)
    if not isinstance(filter_spec, Mapping):
        raise InvalidPolicy("spec.filterTags: must be a mapping with 'pattern' and optional 'extract'")
    regexp = _compile(_field(filter_spec, "pattern"), "spec.filterTags.pattern")
    extract = _field(filter_spec, "extract")
    if not isinstance(extract, str):
        raise InvalidPolicy("spec.filterTags.extract: must be a string template such as '$ts'")
    filtered = filter_tags(regexp, extract, tags)
    return filtered[_latest(policer, list(filtered))]


def validate(spec: Any, exclusions: Sequence[str] | None = None) -> None:
    """Raise InvalidPolicy for whatever Flux would stall on: policy, filterTags, exclusionList."""
    if not isinstance(spec, Mapping):
        raise InvalidPolicy("spec: must be a mapping with 'policy' and optional 'filterTags'")
    build_policer(spec.get("policy"))
    filter_spec = spec.get("filterTags")
    if filter_spec is not None:
        if not isinstance(filter_spec, Mapping):
            raise InvalidPolicy("spec.filterTags: must be a mapping with 'pattern' and optional 'extract'")
        _compile(_field(filter_spec, "pattern"), "spec.filterTags.pattern")
        if not isinstance(_field(filter_spec, "extract"), str):
            raise InvalidPolicy("spec.filterTags.extract: must be a string template such as '$ts'")
    if exclusions is not None and (isinstance(exclusions, str) or not isinstance(exclusions, Sequence)):
        raise InvalidPolicy("spec.exclusionList: must be a list of regular expressions")
    for pattern in exclusions or ():
        _compile(pattern, "spec.exclusionList")
