"""The project's own ImagePolicy decisions and the Go-vs-Python differences our port must keep."""

import re

import pytest

from image_tagger.fluxrules.goports.goregex import GoRegexError, GoRegexp, go_expand
from image_tagger.fluxrules.policy import (
    DEFAULT_EXCLUSIONS,
    InvalidPolicy,
    PolicyFailure,
    parse_go_float,
    scan_tags,
    select_tag,
)
from image_tagger.model.errors import InputError

RELEASE = r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$"
PRODUCTION = {"policy": {"semver": {"range": ">=1.0.0 <2.0.0"}}, "filterTags": {"pattern": RELEASE}}
STAGING = {
    "policy": {"numerical": {"order": "asc"}},
    "filterTags": {"pattern": "^main-[a-f0-9]+-(?P<ts>[0-9]+)$", "extract": "$ts"},
}
PUBLISHED = ["1.0.0", "1.4.2", "1.5.0-rc.1", "2.0.0", "main-3f2c1a9-1764110000"]


def semver(range_: str) -> dict:
    return {"policy": {"semver": {"range": range_}}}


def test_production_policy_picks_latest_1x_release() -> None:
    assert select_tag(PRODUCTION, scan_tags(PUBLISHED)) == "1.4.2"


def test_production_policy_ignores_prerelease_and_branch_builds_without_filter() -> None:
    assert select_tag(semver(">=1.0.0 <2.0.0"), scan_tags(PUBLISHED)) == "1.4.2"


def test_npm_dash_zero_idiom_admits_prereleases() -> None:
    """`<2.0.0-0` puts the whole AND group in prerelease mode (Masterminds, unlike npm)."""
    assert select_tag(semver(">=1.0.0 <2.0.0-0"), scan_tags(PUBLISHED)) == "1.5.0-rc.1"


def test_staging_policy_picks_newest_timestamp_even_when_its_sha_sorts_lower() -> None:
    tags = scan_tags(["main-fa11e00-1764110000", "main-0bad5ea-1764120000", "1.4.2", "main-e1e1e1e-1764115000"])
    assert tags[0] == "main-fa11e00-1764110000"  # stored order puts the higher sha first
    assert select_tag(STAGING, tags) == "main-0bad5ea-1764120000"


def test_numerical_without_filter_fails_on_any_non_numeric_tag() -> None:
    with pytest.raises(PolicyFailure, match="main-3f2c1a9-1764110000"):
        select_tag({"policy": {"numerical": {"order": "asc"}}}, scan_tags(PUBLISHED))


@pytest.mark.parametrize(
    ("order", "expected"),
    [("asc", "01"), ("desc", "01"), ("", "01")],
)
def test_numerical_ties_go_to_the_last_equal_value(order: str, expected: str) -> None:
    assert select_tag({"policy": {"numerical": {"order": order}}}, ["1.0", "1", "01"]) == expected


def test_alphabetical_is_byte_order_not_version_order() -> None:
    assert select_tag({"policy": {"alphabetical": {}}}, ["1.10.0", "1.9.0"]) == "1.9.0"
    assert select_tag({"policy": {"alphabetical": {"order": "desc"}}}, ["b", "a", "B"]) == "B"


def test_semver_policy_wins_over_other_members() -> None:
    spec = {"policy": {"alphabetical": {"order": "asc"}, "semver": {"range": "1.x"}}}
    assert select_tag(spec, ["1.2.0", "1.10.0"]) == "1.10.0"


def test_semver_needs_two_dots_and_accepts_leading_zeros_and_v() -> None:
    assert select_tag(semver(">=2024.1.0"), ["2024.01.15", "2025", "2025.2"]) == "2024.01.15"
    assert select_tag(semver("1.x"), ["v1.2.3", "V1.9.9"]) == "v1.2.3"


def test_equal_versions_tie_on_stored_order() -> None:
    """Without filterTags the descending byte order decides: `v1.2.3` beats `1.2.3` and `1.2.3+build`."""
    assert select_tag(semver("1.x"), scan_tags(["1.2.3", "1.2.3+build", "v1.2.3"])) == "v1.2.3"


def test_returns_original_tag_not_extracted_value() -> None:
    spec = {"policy": {"semver": {"range": "1.x"}}, "filterTags": {"pattern": "^app-(.*)$", "extract": "$1"}}
    assert select_tag(spec, ["app-1.1.0", "app-1.2.0", "1.9.0"]) == "app-1.2.0"


def test_equal_extracted_keys_keep_the_later_tag() -> None:
    spec = {"policy": {"alphabetical": {}}, "filterTags": {"pattern": "^(x)-", "extract": "$1"}}
    assert select_tag(spec, scan_tags(["x-b", "x-a"])) == "x-a"


def test_empty_filter_pattern_keeps_every_tag() -> None:
    spec = {"policy": {"alphabetical": {}}, "filterTags": {}}
    assert select_tag(spec, ["a", "c", "b"]) == "c"


@pytest.mark.parametrize(
    ("spec", "tags"),
    [
        (semver("1.x"), []),
        (semver("3.x"), PUBLISHED),
        ({"policy": {"alphabetical": {}}, "filterTags": {"pattern": "^nomatch$"}}, PUBLISHED),
        ({"policy": {"numerical": {}}, "filterTags": {"pattern": "rc", "extract": "$1x"}}, PUBLISHED),
    ],
    ids=["no-tags", "nothing-in-range", "filter-leaves-nothing", "extract-to-empty-string"],
)
def test_nothing_qualifies_is_a_policy_failure(spec: dict, tags: list[str]) -> None:
    with pytest.raises(PolicyFailure):
        select_tag(spec, tags)


@pytest.mark.parametrize(
    "spec",
    [
        semver(""),
        semver("  "),
        semver(">=1.0.0 <2.0.0-01"),
        semver("1.0.0p"),
        {"policy": {"semver": {}}},
        {"policy": {"alphabetical": {"order": "newest"}}},
        {"policy": {"numerical": {"order": 1}}},
        {"policy": {}},
        {"policy": {"semver": None}},
        {},
        {"policy": {"alphabetical": {}}, "filterTags": {"pattern": "^(?=main)"}},
        {"policy": {"alphabetical": {}}, "filterTags": {"pattern": "^main-(.*)", "extract": 1}},
        {"policy": {"alphabetical": {}}, "filterTags": {"pattern": "[="}},
    ],
    ids=[
        "empty-range",
        "blank-range",
        "range-prerelease-leading-zero",
        "range-garbage",
        "semver-without-range",
        "bad-order",
        "non-string-order",
        "empty-choice",
        "null-choice",
        "no-policy",
        "look-ahead-filter",
        "non-string-extract",
        "unclosed-class-filter",
    ],
)
def test_invalid_policies(spec: dict) -> None:
    with pytest.raises(InvalidPolicy) as raised:
        select_tag(spec, ["1.0.0"])
    assert isinstance(raised.value, InputError)
    assert "\n" not in str(raised.value)


def test_order_is_upper_cased_like_go() -> None:
    assert select_tag({"policy": {"alphabetical": {"order": "DeSc"}}}, ["b", "a"]) == "a"


def test_default_exclusion_drops_cosign_signatures_only() -> None:
    tags = ["1.0.0", "sha256-abc.sig", "sha256-abc.att", "sha256-abc.sbom"]
    assert DEFAULT_EXCLUSIONS == (r"^.*\.sig$",)
    assert scan_tags(tags) == ["sha256-abc.sbom", "sha256-abc.att", "1.0.0"]
    assert scan_tags(tags, []) == scan_tags(tags)


def test_custom_exclusions_replace_the_default() -> None:
    assert scan_tags(["a.sig", "main-1", "1.0.0"], [r"^main-"]) == ["a.sig", "1.0.0"]


@pytest.mark.parametrize("pattern", ["[=", r"(?!x)", r"\1", r"\Z"])
def test_invalid_exclusion_is_invalid_policy_even_without_tags(pattern: str) -> None:
    with pytest.raises(InvalidPolicy, match="exclusionList"):
        scan_tags([], [pattern])


@pytest.mark.parametrize(
    "pattern",
    [r"^(?=v)", r"(?<=v)1", r"(a)\1", "a++", r"x{1001}", r"\Z", r"\C", r"(?P<n>a)(?P<n>b)", r"(?P<é>a)"],
)
def test_go_rejects_what_python_or_re2_would_accept(pattern: str) -> None:
    with pytest.raises(GoRegexError):
        GoRegexp(pattern)


@pytest.mark.parametrize("pattern", [r"(?P<ts>\d+)", r"(?<ts>\d+)", r"\z", r"x{1000}", r"[[:alpha:]\]]", r"\Q\C\E"])
def test_go_accepts(pattern: str) -> None:
    GoRegexp(pattern)


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        (r"^1\.0\.0$", "1.0.0\n"),  # Go's $ is end of text; Python's also matches before a final newline
        (r"^\d+$", "١٢٣"),  # Go's \d is ASCII only
        (r"^\w+$", "é"),  # Go's \w is ASCII only
        (r"^a\sb$", "a\vb"),  # Go's \s has no \v
    ],
)
def test_go_matching_differs_from_python_re(pattern: str, text: str) -> None:
    assert re.search(pattern, text) is not None
    assert not GoRegexp(pattern).matches(text)


def test_filter_uses_go_end_of_text() -> None:
    spec = {"policy": {"alphabetical": {}}, "filterTags": {"pattern": RELEASE}}
    assert select_tag(spec, ["1.0.9", "1.2.0\n"]) == "1.0.9"  # Python's re would let "1.2.0\n" win


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("$1", "12"),
        ("${1}x", "12x"),
        ("$1x", ""),
        ("$num", "12"),
        ("${num}-b", "12-b"),
        ("$0", "v12"),
        ("$01", ""),
        ("$2", ""),
        ("$opt", ""),
        ("$9", ""),
        ("$missing", ""),
        ("$$1", "$1"),
        ("$", "$"),
        ("$-", "$-"),
        ("${1", "${1"),
        ("${", "${"),
        ("a$1.$1", "a12.12"),
    ],
)
def test_go_expand(template: str, expected: str) -> None:
    match = GoRegexp(r"v(?P<num>[0-9]+)(-(?P<opt>x))?").search("tag-v12-y")
    assert match is not None
    assert go_expand(template, match) == expected


def test_search_uses_first_leftmost_match() -> None:
    match = GoRegexp(r"v([0-9]+)").search("v1-v2")
    assert match is not None and go_expand("$1", match) == "1"


@pytest.mark.parametrize(
    ("text", "value"),
    [("17", 17.0), ("017", 17.0), ("1_000", 1000.0), ("-1.5e3", -1500.0), (".5", 0.5), ("0x1p-2", 0.25)],
)
def test_go_float_accepts(text: str, value: float) -> None:
    assert parse_go_float(text) == value


@pytest.mark.parametrize("text", ["", " 1", "1,000", "0x10", "0b101", "1__0", "_1", "+nan", "1e309", "١"])
def test_go_float_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_go_float(text)


def test_large_unicode_repetitions_compile_as_in_go():
    assert GoRegexp(r"^\pL{1000}$").matches("a" * 1000)
