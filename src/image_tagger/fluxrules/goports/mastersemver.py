"""Masterminds/semver v3 (v3.4/v3.5 parse and Check semantics) as Flux's image-reflector-controller uses it.

Python's `semver` package follows semver.org strictly; Flux does not (leading zeros, `v` prefix, `1.x`
ranges, prerelease opt-in per OR group), so the library is re-implemented here from its source rules.
Go regexps are mirrored with stdlib `re` (same leftmost-first submatches): `\\s` is spelled `[\\t\\n\\f\\r ]`
and `^…$` is `fullmatch`, because Python's `\\s` is Unicode-wide and its `$` also matches before a trailing
newline.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cmp_to_key

import re2

from image_tagger.fluxrules.goports.gostrconv import parse_uint

_WS = r"[\t\n\f\r ]"
_IDENTS = r"[0-9A-Za-z\-]+(?:\.[0-9A-Za-z\-]+)*"
# Prerelease (groups: "-pre", pre) and metadata (groups: "+meta", meta) tail shared by the loose patterns.
_PRE_META = r"(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?"
_LOOSE = re.compile(r"v?([0-9]+)(\.[0-9]+)?(\.[0-9]+)?" + _PRE_META)
_NUM = r"(0|[1-9][0-9]*)"
_PRE_IDENT = r"(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)"
_STRICT = re.compile(rf"v?{_NUM}(?:\.{_NUM})?(?:\.{_NUM})?(?:-({_PRE_IDENT}(?:\.{_PRE_IDENT})*))?(?:\+({_IDENTS}))?")
_ALLOWED = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789")

# Operator alternation in the library's order; leftmost-first matching depends on it (note the empty one).
_OPS = r"=||!=|>|<|>=|=>|<=|=<|~|~>|\^"
_CV = r"v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?" + _PRE_META  # '|' is a literal here
_RANGE = re.compile(rf"{_WS}*({_CV}){_WS}+-{_WS}+({_CV}){_WS}*")
# Only a yes/no answer is needed here, and this pattern backtracks exponentially in `re` (`>1   ` * 16
# takes seconds), so it runs on RE2, which is Go's engine: same verdict, linear time.
_VALID_GROUP = re2.compile(rf"({_WS}*({_OPS}){_WS}*({_CV}){_WS}*)((?:{_WS}+|,{_WS}*)({_OPS}){_WS}*({_CV}){_WS}*)*")
_FIND = re.compile(rf"({_OPS}){_WS}*({_CV})")
_ONE = re.compile(rf"{_WS}*({_OPS}){_WS}*({_CV}){_WS}*")


class VersionError(ValueError):
    """A version string the library rejects; `sentinel` names the Go error value (tests pin it)."""

    def __init__(self, sentinel: str, detail: str) -> None:
        super().__init__(detail)
        self.sentinel = sentinel


class ConstraintError(ValueError):
    """A range string `NewConstraint` rejects."""


_SENTINELS = {
    "ErrInvalidSemVer": "invalid semantic version",
    "ErrEmptyString": "version string empty",
    "ErrInvalidCharacters": "invalid characters in version",
    "ErrSegmentStartsZero": "version segment starts with 0",
    "ErrInvalidMetadata": "invalid metadata string",
    "ErrInvalidPrerelease": "invalid prerelease string",
}


def _err(sentinel: str) -> VersionError:
    return VersionError(sentinel, _SENTINELS[sentinel])


@dataclass(frozen=True)
class Version:
    """A parsed version; `original` is the input text, which is what Flux reports as the chosen tag."""

    major: int
    minor: int
    patch: int
    pre: str = ""
    metadata: str = ""
    original: str = ""

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.pre:
            text += "-" + self.pre
        return text + ("+" + self.metadata if self.metadata else "")


def _uint64(digits: str) -> int:
    """Go strconv.ParseUint(s, 10, 64): ASCII digits only, overflow is an error."""
    value = parse_uint(digits, 10)
    if value is None:
        raise VersionError("strconv.ParseUint", f"error parsing version segment: {digits!r}")
    return value


def validate_prerelease(pre: str) -> None:
    """Dot-separated, non-empty `[0-9A-Za-z-]` identifiers; numeric ones without leading zeros."""
    for part in pre.split("."):
        if part == "":
            raise _err("ErrInvalidPrerelease")
        if part.isascii() and part.isdigit():
            if len(part) > 1 and part[0] == "0":
                raise _err("ErrSegmentStartsZero")
        elif not set(part) <= _ALLOWED:
            raise _err("ErrInvalidPrerelease")


def validate_metadata(metadata: str) -> None:
    """Dot-separated, non-empty `[0-9A-Za-z-]` identifiers (leading zeros are fine)."""
    for part in metadata.split("."):
        if part == "" or not set(part) <= _ALLOWED:
            raise _err("ErrInvalidMetadata")


def _checked(version: Version) -> Version:
    if version.pre:
        validate_prerelease(version.pre)
    if version.metadata:
        validate_metadata(version.metadata)
    return version


def _detailed_error(text: str) -> VersionError:
    """Why a non-coercing parse failed, as the library's validateVersion reports it."""
    m = _LOOSE.fullmatch(text)
    if m is None:
        return _err("ErrInvalidSemVer")
    for segment in (m[1], (m[2] or "")[1:], (m[3] or "")[1:]):
        if len(segment) > 1 and segment[0] == "0":
            return _err("ErrSegmentStartsZero")
        if segment:
            try:
                _uint64(segment)
            except VersionError as err:
                return err
    try:
        _checked(Version(0, 0, 0, m[5] or "", m[8] or ""))
    except VersionError as err:
        return err
    return _err("ErrInvalidSemVer")


def new_version(text: str, *, coerce: bool = True, detailed: bool = True) -> Version:
    """`semver.NewVersion`; `coerce`/`detailed` mirror the library globals (Flux keeps the defaults)."""
    if coerce:
        m = _LOOSE.fullmatch(text)
        if m is None:
            raise _err("ErrInvalidSemVer")
        major, minor, patch, pre, metadata = m[1], (m[2] or "")[1:], (m[3] or "")[1:], m[5], m[8]
    else:
        m = _STRICT.fullmatch(text)
        if m is None:
            raise _detailed_error(text) if detailed else _err("ErrInvalidSemVer")
        major, minor, patch, pre, metadata = m[1], m[2] or "", m[3] or "", m[4], m[5]
    return _checked(
        Version(
            _uint64(major),
            _uint64(minor) if minor else 0,
            _uint64(patch) if patch else 0,
            pre or "",
            metadata or "",
            text,
        )
    )


def strict_new_version(text: str) -> Version:
    """`semver.StrictNewVersion`: exactly MAJOR.MINOR.PATCH, no `v`, no leading zeros."""
    if text == "":
        raise _err("ErrEmptyString")
    parts = text.split(".", 2)
    if len(parts) != 3:
        raise _err("ErrInvalidSemVer")
    metadata = pre = ""
    if "+" in parts[2]:
        parts[2], metadata = parts[2].split("+", 1)
        validate_metadata(metadata)
    if "-" in parts[2]:
        parts[2], pre = parts[2].split("-", 1)
        validate_prerelease(pre)
    for part in parts:
        if not set(part) <= set("0123456789"):
            raise _err("ErrInvalidCharacters")
        if len(part) > 1 and part[0] == "0":
            raise _err("ErrSegmentStartsZero")
    major, minor, patch = (_uint64(part) for part in parts)
    return Version(major, minor, patch, pre, metadata, text)


def parse_version(tag: str) -> Version:
    """fluxcd/pkg `version.ParseVersion` (IRC >= v1.0): two dots anywhere, then lenient NewVersion."""
    if len(tag.split(".", 2)) != 3:
        raise VersionError("ErrInvalidSemVer", f"{tag!r} does not contain two dots")
    return new_version(tag)


def _is_uint64(part: str) -> bool:
    return parse_uint(part, 10) is not None


def _compare_pre_part(a: str, b: str) -> int:
    if a == b:
        return 0
    if a == "" or b == "":
        return -1 if a == "" else 1
    a_num, b_num = _is_uint64(a), _is_uint64(b)
    if a_num and b_num:
        return -1 if int(a) < int(b) else 1
    if a_num != b_num:
        return -1 if a_num else 1
    return -1 if a < b else 1  # code-point order == Go's byte order for UTF-8


def compare_prerelease(a: str, b: str) -> int:
    """Identifier-wise precedence; a missing identifier sorts below a present one."""
    a_parts, b_parts = a.split("."), b.split(".")
    for i in range(max(len(a_parts), len(b_parts))):
        a_part = a_parts[i] if i < len(a_parts) else ""
        b_part = b_parts[i] if i < len(b_parts) else ""
        if d := _compare_pre_part(a_part, b_part):
            return d
    return 0


def compare(a: Version, b: Version) -> int:
    """`Version.Compare`: -1/0/1 by precedence; build metadata never matters."""
    for x, y in ((a.major, b.major), (a.minor, b.minor), (a.patch, b.patch)):
        if x != y:
            return -1 if x < y else 1
    if a.pre == b.pre == "":
        return 0
    if a.pre == "" or b.pre == "":
        return 1 if a.pre == "" else -1
    return compare_prerelease(a.pre, b.pre)


version_key = cmp_to_key(compare)


@dataclass(frozen=True)
class Constraint:
    """One `<op> <version>` term; the dirty flags record wildcards or omitted minor/patch parts."""

    op: str
    orig: str
    con: Version
    dirty: bool = False
    minor_dirty: bool = False
    patch_dirty: bool = False

    def failure(self, v: Version, include_pre: bool) -> str | None:
        """None when `v` satisfies the term, else the library's reason (a %-format of version and orig)."""
        if v.pre and not include_pre:
            return _PRERELEASE_REASON
        return _OP_CHECKS[self.op](v, self)

    def check(self, v: Version, include_pre: bool) -> bool:
        return self.failure(v, include_pre) is None


_PRERELEASE_REASON = "%s is a prerelease version and the constraint is only looking for release versions"


def _not_equal(v: Version, c: Constraint) -> str | None:
    con = c.con
    if c.dirty:
        if con.major != v.major:
            return None
        if con.minor != v.minor and not c.minor_dirty:
            return None
        if c.minor_dirty:
            return "%s is equal to %s"
        if con.patch != v.patch and not c.patch_dirty:
            return None
        if c.patch_dirty:
            if (v.pre or con.pre) and compare_prerelease(v.pre, con.pre) != 0:
                return None
            return "%s is equal to %s"
    return "%s is equal to %s" if compare(v, con) == 0 else None


def _greater_than(v: Version, c: Constraint) -> str | None:
    fail = "%s is less than or equal to %s"
    con = c.con
    if c.dirty:
        if v.major != con.major:
            return None if v.major > con.major else fail
        if c.minor_dirty:
            return fail
        if c.patch_dirty:
            return None if v.minor > con.minor else fail
    return None if compare(v, con) > 0 else fail


def _less_than(v: Version, c: Constraint) -> str | None:
    return None if compare(v, c.con) < 0 else "%s is greater than or equal to %s"


def _greater_equal(v: Version, c: Constraint) -> str | None:
    return None if compare(v, c.con) >= 0 else "%s is less than %s"


def _less_equal(v: Version, c: Constraint) -> str | None:
    fail = "%s is greater than %s"
    con = c.con
    if not c.dirty:
        return None if compare(v, con) <= 0 else fail
    if v.major > con.major or (v.major == con.major and v.minor > con.minor and not c.minor_dirty):
        return fail
    return None


def _tilde(v: Version, c: Constraint) -> str | None:
    con = c.con
    if compare(v, con) < 0:
        return "%s is less than %s"
    if (con.major, con.minor, con.patch) == (0, 0, 0) and not c.minor_dirty and not c.patch_dirty:
        return None
    if v.major != con.major:
        return "%s does not have same major version as %s"
    if v.minor != con.minor and not c.minor_dirty:
        return "%s does not have same major and minor version as %s"
    return None


def _tilde_or_equal(v: Version, c: Constraint) -> str | None:
    if c.dirty:
        return _tilde(v, c)
    return None if compare(v, c.con) == 0 else "%s is not equal to %s"


def _caret(v: Version, c: Constraint) -> str | None:
    con = c.con
    if compare(v, con) < 0:
        return "%s is less than %s"
    if con.major > 0 or c.minor_dirty:
        return None if v.major == con.major else "%s does not have same major version as %s"
    if v.major > 0:
        return "%s does not have same major version as %s"
    if con.minor > 0 or c.patch_dirty:
        if v.minor == con.minor:
            return None
        return (
            "%s does not have same minor version as %s. "
            "Expected minor versions to match when constraint major version is 0"
        )
    if v.minor > 0:
        return "%s does not have same minor version as %s"
    if v.patch == con.patch:
        return None
    return "%s does not equal %s. Expect version and constraint to equal when major and minor versions are 0"


_OP_CHECKS: dict[str, Callable[[Version, Constraint], str | None]] = {
    "": _tilde_or_equal,
    "=": _tilde_or_equal,
    "!=": _not_equal,
    ">": _greater_than,
    "<": _less_than,
    ">=": _greater_equal,
    "=>": _greater_equal,
    "<=": _less_equal,
    "=<": _less_equal,
    "~": _tilde,
    "~>": _tilde,
    "^": _caret,
}


def _is_x(part: str) -> bool:
    return part in ("x", "X", "*")


def parse_constraint(text: str) -> Constraint:
    """The library's internal single-term parser (`""` means any version, unlike NewConstraint)."""
    if text == "":
        return Constraint("", "", strict_new_version("0.0.0"), dirty=True)
    m = _ONE.fullmatch(text)
    if m is None:
        raise ConstraintError(f"improper constraint: {text}")
    op, orig, major, minor, patch, pre = m[1], m[2], m[3], m[4] or "", m[5] or "", m[6] or ""
    flags: dict[str, bool] = {}
    if _is_x(major):
        ver, flags = "0.0.0" + pre, {"dirty": True}
    elif minor == "" or _is_x(minor[1:]):
        ver, flags = major + ".0.0" + pre, {"dirty": True, "minor_dirty": True}
    elif patch == "" or _is_x(patch[1:]):
        ver, flags = major + minor + ".0" + pre, {"dirty": True, "patch_dirty": True}
    else:
        ver = orig
    try:
        con = new_version(ver)
    except VersionError:
        raise ConstraintError("constraint parser error") from None
    return Constraint(op, orig, con, **flags)


def _rewrite_ranges(text: str) -> str:
    """Hyphen ranges `A - B` become `>= A, <= B ` (first occurrence of each match, as the library does)."""
    out = text
    for m in _RANGE.finditer(text):
        out = out.replace(m[0], f">= {m[1]}, <= {m[11]} ", 1)
    return out


@dataclass(frozen=True)
class Constraints:
    """OR groups of AND-ed terms, plus which groups opted into prereleases by naming one."""

    groups: tuple[tuple[Constraint, ...], ...]
    include_prerelease: bool = False

    def _group_pre(self, group: tuple[Constraint, ...]) -> bool:
        return self.include_prerelease or any(c.con.pre for c in group)

    def check(self, v: Version) -> bool:
        """`Constraints.Check`: some OR group has every term satisfied."""
        return any(all(c.check(v, self._group_pre(g)) for c in g) for g in self.groups)

    def validate(self, v: Version) -> tuple[bool, list[str]]:
        """`Constraints.Validate`: the same verdict plus the library's failure messages (%q-quoted)."""
        errors: list[str] = []
        reported_pre = False
        for group in self.groups:
            include_pre = self._group_pre(group)
            ok = True
            for c in group:
                reason = c.failure(v, include_pre)
                if reason is None:
                    continue
                ok = False
                if reason == _PRERELEASE_REASON:
                    if not reported_pre:
                        errors.append(reason % _go_quote(str(v)))
                        reported_pre = True
                else:
                    errors.append(reason % (_go_quote(str(v)), _go_quote(c.orig)))
            if ok:
                return True, []
        return False, errors


def _go_quote(text: str) -> str:
    """Go %q of a version or range text; those only hold [0-9A-Za-z.+*|-], so no escaping is needed."""
    return f'"{text}"'


def new_constraint(text: str, include_prerelease: bool = False) -> Constraints:
    """`semver.NewConstraint`: hyphen ranges, `||` groups, whitespace/comma separated AND terms."""
    groups = []
    for group in _rewrite_ranges(text).split("||"):
        if _VALID_GROUP.fullmatch(group) is None:
            raise ConstraintError(f"improper constraint: {group}")
        terms = [m[0] for m in _FIND.finditer(group)] or [group]
        groups.append(tuple(parse_constraint(term) for term in terms))
    return Constraints(tuple(groups), include_prerelease)
