"""Every case of the vendored oracle tables (tests/oracles, re-verified against upstream Go) through our code.

What the tables pin down is written up in docs/flux-semantics.md §3 (scan) and §4 (ImagePolicy).
"""

from collections.abc import Callable

import pytest

from image_tagger.fluxrules.goports.goregex import GoRegexp
from image_tagger.fluxrules.goports.mastersemver import (
    ConstraintError,
    Version,
    VersionError,
    compare,
    new_constraint,
    new_version,
    parse_constraint,
    parse_version,
    strict_new_version,
    validate_metadata,
    validate_prerelease,
    version_key,
)
from image_tagger.fluxrules.policy import (
    InvalidPolicy,
    PolicyFailure,
    filter_out_tags,
    filter_tags,
    parse_choice,
    scan_tags,
    select_tag,
)

from .conftest import ORACLE_FILES, load_oracle

PARSERS: dict[str, Callable[[str], Version]] = {
    "NewVersion": new_version,
    "NewVersion (MustParse)": new_version,
    "NewVersion with CoerceNewVersion=false": lambda v: new_version(v, coerce=False),
    "NewVersion with CoerceNewVersion=false, DetailedNewVersionErrors=false": lambda v: new_version(
        v, coerce=False, detailed=False
    ),
    "StrictNewVersion": strict_new_version,
    "flux version.ParseVersion": parse_version,
}

COMPARISONS: dict[str, Callable[[int], object]] = {
    "Compare": lambda d: d,
    "LessThan": lambda d: d < 0,
    "LessThanEqual": lambda d: d <= 0,
    "GreaterThan": lambda d: d > 0,
    "GreaterThanEqual": lambda d: d >= 0,
    "Equal": lambda d: d == 0,
}

OP_FUNCS = {
    "": "constraintTildeOrEqual",
    "=": "constraintTildeOrEqual",
    "!=": "constraintNotEqual",
    ">": "constraintGreaterThan",
    "<": "constraintLessThan",
    ">=": "constraintGreaterThanEqual",
    "=>": "constraintGreaterThanEqual",
    "<=": "constraintLessThanEqual",
    "=<": "constraintLessThanEqual",
    "~": "constraintTilde",
    "~>": "constraintTilde",
    "^": "constraintCaret",
}


def spec_of(policy: dict) -> dict:
    """The oracle's flat policy description as an ImagePolicy `spec` mapping."""
    choice = {}
    if policy["type"] == "semver":
        choice["semver"] = {"range": policy["range"]}
    elif policy["type"] is not None:
        choice[policy["type"]] = {"order": policy["order"]}
    spec: dict = {"policy": choice}
    if policy["pattern"] is not None or policy["extract"] is not None:
        spec["filterTags"] = {"pattern": policy["pattern"] or "", "extract": policy["extract"] or ""}
    return spec


def parses(parser: Callable[[str], Version], text: str) -> bool:
    try:
        parser(text)
    except VersionError:
        return False
    return True


def constraint_ok(text: str) -> bool:
    try:
        new_constraint(text)
    except ConstraintError:
        return False
    return True


def test_every_oracle_kind_is_exercised() -> None:
    """Guards against a table growing a kind these tests would silently pass over."""
    handled = {
        "flux_policy_case": {"policy_construct", "latest", "filter", "exclusion", "sort_latest_tags"},
        "semver_constraint_case": {
            "parse_single",
            "parse",
            "check_single",
            "check",
            "validate",
            "validate_message",
        },
        "semver_version_case": {
            "parse",
            "parse_error_identity",
            "string",
            "original",
            "compare",
            "validate_prerelease",
            "validate_metadata",
            "sort_collection",
            "flux_sort",
        },
    }
    for argument, filename in ORACLE_FILES.items():
        cases = load_oracle(filename)
        assert {case["kind"] for case in cases} <= handled[argument], filename


def test_flux_policy_case(flux_policy_case: dict) -> None:
    case = flux_policy_case
    kind, tags = case["kind"], case["tags"]
    if kind == "policy_construct":
        if case["expect_error"]:
            with pytest.raises(InvalidPolicy):
                parse_choice(spec_of(case["policy"])["policy"])
        else:
            parse_choice(spec_of(case["policy"])["policy"])
    elif kind == "latest":
        if case["expect_error"]:
            with pytest.raises((InvalidPolicy, PolicyFailure)):
                select_tag(spec_of(case["policy"]), tags)
        else:
            assert select_tag(spec_of(case["policy"]), tags) == case["expected"]
            assert select_tag(spec_of(case["policy"]), list(reversed(tags))) == case["expected"]
    elif kind == "filter":
        regexp = GoRegexp(case["policy"]["pattern"])
        assert sorted(filter_tags(regexp, case["policy"]["extract"], tags)) == case["expected_filtered"]
    elif kind == "exclusion":
        if case["expect_error"]:
            with pytest.raises(InvalidPolicy):
                filter_out_tags(tags, case["exclusion_list"])
        else:
            assert filter_out_tags(tags, case["exclusion_list"]) == case["expected_remaining"]
    else:
        assert (scan_tags(tags)[:10] or None) == case["expected_latest_tags"]


def test_semver_constraint_case(semver_constraint_case: dict) -> None:
    case = semver_constraint_case
    kind, text, version = case["kind"], case["constraint"], case["version"]
    assert constraint_ok(text) == case["new_constraint_ok"]
    if case.get("flux_parse_version_ok") is not None:
        assert parses(parse_version, version) == case["flux_parse_version_ok"]
    if kind == "parse_single":
        if case["constraint_error"]:
            with pytest.raises(ConstraintError):
                parse_constraint(text)
        else:
            single = parse_constraint(text)
            assert OP_FUNCS[single.op] == case["expected_op_func"]
            assert str(single.con) == case["expected_constraint_version"]
    elif kind == "parse":
        if case.get("expected_or_groups") is not None:
            groups = new_constraint(text).groups
            assert len(groups) == case["expected_or_groups"]
            assert len(groups[0]) == case["expected_first_group_and_count"]
    elif kind == "check_single":
        single = parse_constraint(text)
        assert single.check(new_version(version), bool(single.con.pre)) == case["expected_match"]
        whole = new_constraint(text).check(new_version(version)) if case["new_constraint_ok"] else None
        assert whole == case["new_constraint_check"]
    else:
        constraints = new_constraint(text, include_prerelease=case["include_prerelease"])
        candidate = PARSERS[case["version_parser"]](version)
        assert constraints.check(candidate) == case["expected_match"]
        ok, errors = constraints.validate(candidate)
        assert ok == case["expected_match"]
        assert bool(errors) == (not ok)
        if "expected_errors" in case:
            assert errors == case["expected_errors"]
        elif "expected_first_error" in case:
            assert errors[0] == case["expected_first_error"]


def test_semver_version_case(semver_version_case: dict) -> None:
    case = semver_version_case
    kind = case["kind"]
    if kind == "parse":
        parser = PARSERS[case["parser"]]
        if case["expect_error"]:
            with pytest.raises(VersionError):
                parser(case["version"])
        else:
            assert str(parser(case["version"])) == case["parsed_string"]
        assert parses(parse_version, case["version"]) == case["flux_parse_version_ok"]
    elif kind == "parse_error_identity":
        parser = PARSERS[case["parser"]]
        if case["expect_error"]:
            with pytest.raises(VersionError) as raised:
                parser(case["version"])
            assert raised.value.sentinel == case["expected_error"]
        else:
            parser(case["version"])
    elif kind == "string":
        assert str(new_version(case["version"])) == case["expected_string"]
    elif kind == "original":
        assert new_version(case["version"]).original == case["expected_original"]
    elif kind == "compare":
        parser = PARSERS[case["parser"]]
        difference = compare(parser(case["v1"]), parser(case["v2"]))
        assert COMPARISONS[case["op"]](difference) == case["expected"]
    elif kind in ("validate_prerelease", "validate_metadata"):
        validate = validate_prerelease if kind == "validate_prerelease" else validate_metadata
        if case["expect_error"]:
            with pytest.raises(VersionError) as raised:
                validate(case["value"])
            assert raised.value.sentinel == case["expected_error"]
        else:
            validate(case["value"])
    elif kind == "sort_collection":
        ordered = sorted((new_version(v) for v in case["input"]), key=version_key)
        assert [str(v) for v in ordered] == case["expected_sorted_strings"]
    else:  # flux_sort: fluxcd/pkg version.Sort = filter by ParseVersion + range, stable descending sort
        constraints = new_constraint(case["constraint"])
        kept = [v for v in case["input"] if parses(parse_version, v) and constraints.check(parse_version(v))]
        ordered = sorted((parse_version(v) for v in kept), key=version_key, reverse=True)
        assert [v.original for v in ordered] == case["expected"]
