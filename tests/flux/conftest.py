"""Locates the read-only shared reference folder and turns its oracle tables into parametrized cases."""

import json
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"

# Test argument name -> oracle file under shared/flux-oracles; each case becomes one test, id'd by case.
ORACLE_FILES = {
    "flux_policy_case": "flux_policy_cases.json",
    "semver_constraint_case": "semver_constraint_cases.json",
    "semver_version_case": "semver_version_cases.json",
}


@pytest.fixture
def shared_dir() -> Path:
    """The shared folder beside the checkout; tests needing it skip when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"shared reference folder not found at {SHARED}")
    return SHARED


def _case_id(index: int, case: dict) -> str:
    if "id" in case:
        return case["id"]
    subject = case.get("constraint", case.get("version", case.get("value", "")))
    return f"{index:03d}-{case['kind']}-{subject!r}-{case.get('version') or case.get('v2') or ''}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for argument, filename in ORACLE_FILES.items():
        if argument not in metafunc.fixturenames:
            continue
        path = SHARED / "flux-oracles" / filename
        if not path.is_file():
            skip = pytest.mark.skip(reason=f"oracle table {path} absent")
            metafunc.parametrize(argument, [pytest.param(None, marks=skip)], ids=["absent"])
            continue
        cases = json.loads(path.read_text(encoding="utf-8"))
        metafunc.parametrize(argument, cases, ids=[_case_id(i, c) for i, c in enumerate(cases)])
