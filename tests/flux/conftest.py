"""Paths of the vendored Flux evidence (tests/oracles, tests/fixtures/flux-setters) and the oracle parametrization.

The data lives in this repository; a missing or empty file is a collection error, never a skip.
"""

import json
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
ORACLES = TESTS / "oracles"  # provenance: tests/oracles/SOURCE.md
SETTER_FIXTURES = TESTS / "fixtures" / "flux-setters"  # provenance: tests/fixtures/flux-setters/SOURCE.md

# Test argument name -> oracle file under tests/oracles; each case becomes one test, id'd by case.
ORACLE_FILES = {
    "flux_policy_case": "flux_policy_cases.json",
    "semver_constraint_case": "semver_constraint_cases.json",
    "semver_version_case": "semver_version_cases.json",
}
# Entries per table (tests/oracles/SOURCE.md): a truncated copy fails instead of quietly testing less.
ORACLE_SIZES = {
    "flux_policy_cases.json": 83,
    "semver_constraint_cases.json": 644,
    "semver_version_cases.json": 259,
}


def load_oracle(filename: str) -> list[dict]:
    """The cases of one vendored oracle table; raises (failing collection) when it is absent or short."""
    path = ORACLES / filename
    if not path.is_file():
        raise FileNotFoundError(f"vendored oracle table missing: {path} (see tests/oracles/SOURCE.md)")
    cases = json.loads(path.read_text(encoding="utf-8"))
    if len(cases) != ORACLE_SIZES[filename]:
        raise ValueError(f"{path}: {len(cases)} cases, expected {ORACLE_SIZES[filename]}")
    return cases


def _case_id(index: int, case: dict) -> str:
    if "id" in case:
        return case["id"]
    subject = case.get("constraint", case.get("version", case.get("value", "")))
    return f"{index:03d}-{case['kind']}-{subject!r}-{case.get('version') or case.get('v2') or ''}"


def pytest_generate_tests(metafunc) -> None:
    for argument, filename in ORACLE_FILES.items():
        if argument in metafunc.fixturenames:
            cases = load_oracle(filename)
            metafunc.parametrize(argument, cases, ids=[_case_id(i, c) for i, c in enumerate(cases)])
