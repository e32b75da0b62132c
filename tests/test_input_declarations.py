"""Each action's inputs are declared once (rules/publishinputs.py, pullrequest/inputs.py): action.yml, the README's
input table and `image-tagger publish --help` say what the declaration says, and every input declared secret is
masked wherever it is given (the action's INPUT_*, the CLI's environment, stdin or file)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from support.cli import explain, run_cli
from support.github_runner import run_module_as_step

from image_tagger.model.inputspec import InputSpec, Mask
from image_tagger.pullrequest.inputs import PULL_REQUEST_INPUTS
from image_tagger.rules.publishinputs import PUBLISH_INPUTS

REPO = Path(__file__).resolve().parents[1]
ACTIONS = {
    "publish": (REPO / "action.yml", REPO / "README.md", PUBLISH_INPUTS),
    "pull-request": (REPO / "pull-request" / "action.yml", REPO / "pull-request" / "README.md", PULL_REQUEST_INPUTS),
}
SAMPLE = "s3cret!Value"  # not a valid image name nor a folder: the refusal quotes it, so the masking must act


def test_the_checked_in_files_are_what_the_declarations_generate() -> None:
    done = subprocess.run([sys.executable, REPO / "tools" / "gen_inputs.py", "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("action", ACTIONS)
def test_action_yml_declares_each_input_as_declared(action: str) -> None:
    action_yml, _, specs = ACTIONS[action]
    declared = YAML(typ="safe").load(action_yml.read_text())["inputs"]
    assert list(declared) == [spec.name for spec in specs]
    for spec in specs:
        wanted = {"description": spec.description, "required": spec.required}
        assert declared[spec.name] == wanted if spec.required else wanted | {"default": spec.default}


def readme_rows(readme: Path) -> dict[str, tuple[str, str]]:
    """The input table's rows: name -> (default column, meaning)."""
    lines = readme.read_text().splitlines()
    start = lines.index("| input | default | meaning |") + 2
    rows = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        name, default, meaning = (cell.strip() for cell in line.strip("|").split(" | "))
        rows[name.strip("`")] = (default, meaning)
    return rows


@pytest.mark.parametrize("action", ACTIONS)
def test_the_readme_table_gives_each_input_its_default_and_meaning(action: str) -> None:
    _, readme, specs = ACTIONS[action]
    rows = readme_rows(readme)
    assert list(rows) == [spec.name for spec in specs]
    for spec in specs:
        default, meaning = rows[spec.name]
        assert meaning == spec.meaning
        if spec.required:
            assert default == "(required)"
        else:
            assert default == (f"`{spec.default}`" if spec.default else spec.empty or "empty")


def help_of(command: str) -> tuple[dict[str, str], str]:
    """`image-tagger COMMAND --help` as a user sees it: each flag's help (whitespace collapsed), and the whole."""
    done = run_cli(command, "--help", env={"COLUMNS": "100"})
    assert done.returncode == 0, explain(done)
    entries: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in done.stdout.splitlines():
        if line.startswith("  -"):
            invocation, _, text = line.strip().partition("  ")
            current = [text]
            entries.update(dict.fromkeys(re.findall(r"--[\w-]+", invocation), current))
        elif current is not None and line.startswith(" " * 24):
            current.append(line)
        else:
            current = None
    return {flag: " ".join(" ".join(parts).split()) for flag, parts in entries.items()}, " ".join(done.stdout.split())


def test_publish_help_gives_each_input_its_flag_meaning_and_default() -> None:
    flags, whole = help_of("publish")
    for spec in PUBLISH_INPUTS:
        if spec.secret is not None:  # never a flag's value: a file's name at most; the help says where it comes from
            assert f"--{spec.name}" not in flags or spec.cli == f"--{spec.name} FILE", spec.name
            assert f"{spec.name}: from {spec.cli}. {spec.description}" in whole
            continue
        assert flags[f"--{spec.name}"].startswith(spec.description), spec.name
        assert (f"(default: {spec.default})" in flags[f"--{spec.name}"]) == bool(spec.default), spec.name
    assert flags["--build-arg"] == flags["--build-args"]  # the old spelling still works


def test_tags_takes_the_naming_inputs_as_publish_does() -> None:
    tags, _ = help_of("tags")
    publish, _ = help_of("publish")
    naming = {f"--{spec.name}" for spec in PUBLISH_INPUTS if spec.naming}
    assert set(tags) - {"--help", "--ref", "--sha", "--event", "--pr-number", "--json"} == naming
    assert all(tags[flag] == publish[flag] for flag in naming)


def given_secret(spec: InputSpec) -> str:
    """The secret input's text, SAMPLE in the place its masking covers."""
    return {Mask.LOGIN: SAMPLE, Mask.ID_VALUES: f"npm_token={SAMPLE}", Mask.LINES: f"first-token\n{SAMPLE}"}[
        spec.secret
    ]


def assert_masked(run: dict) -> None:
    """SAMPLE registered as a mask before anything else, and printed nowhere else."""
    masks = [c.message for c in run["commands"] if c.name == "add-mask"]
    assert SAMPLE in masks and [c.name for c in run["commands"][: len(masks)]] == ["add-mask"] * len(masks)
    visible = "\n".join(line for line in run["stdout"].splitlines() if "::add-mask::" not in line)
    assert "[redacted]" in visible, run
    for text in (visible, run["stderr"], run["summary"], *run["outputs"].values()):
        assert SAMPLE not in text, run


@pytest.mark.parametrize("spec", [s for s in PUBLISH_INPUTS if s.secret], ids=lambda s: s.name)
def test_the_action_masks_each_secret_input(spec: InputSpec, tmp_path: Path) -> None:
    """The refusal of `image` quotes SAMPLE: it must come out redacted."""
    env = {"PATH": "/usr/bin:/bin", "GITHUB_WORKSPACE": str(tmp_path), "INPUT_IMAGE": SAMPLE, "INPUT_USERNAME": "ci"}
    env[f"INPUT_{spec.name.upper()}"] = given_secret(spec)
    run = run_module_as_step("image_tagger.entry.action", env, tmp_path / "_temp", timeout=60)
    assert run["returncode"] == 2, run
    assert_masked(run)


@pytest.mark.parametrize("spec", [s for s in PULL_REQUEST_INPUTS if s.secret], ids=lambda s: s.name)
def test_the_pull_request_action_masks_each_secret_input(spec: InputSpec, tmp_path: Path) -> None:
    """The refusal of `path` quotes SAMPLE: it must come out redacted."""
    env = {
        "PATH": "/usr/bin:/bin",
        "GITHUB_WORKSPACE": str(tmp_path),
        "GITHUB_REPOSITORY": "acme/config",
        "INPUT_GITHUB-TOKEN": "another-token",
        "INPUT_PATH": SAMPLE,
        "INPUT_REGISTRY-USERNAME": "ci",
        f"INPUT_{spec.name.upper()}": given_secret(spec),
    }
    run = run_module_as_step("image_tagger.pullrequest", env, tmp_path / "_temp", timeout=60)
    assert run["returncode"] == 2, run
    assert_masked(run)


@pytest.mark.parametrize("spec", [s for s in PUBLISH_INPUTS if s.secret], ids=lambda s: s.name)
def test_the_cli_masks_each_secret_input_however_it_is_given(spec: InputSpec, tmp_path: Path) -> None:
    """From its environment variable, stdin (the password) or a file (the build secrets, the signing key): never
    printed."""
    ways: list[tuple[dict[str, str], list[str], str | None]] = []
    if spec.env:
        ways.append(({spec.env: given_secret(spec)}, [], None))
    if "--password-stdin" in spec.cli:
        ways.append(({}, ["--password-stdin"], given_secret(spec) + "\n"))
    for flag in ("--secrets-file", "--signing-key"):
        if flag in spec.cli:
            (tmp_path / "secrets").write_text(given_secret(spec))
            ways.append(({}, [flag, str(tmp_path / "secrets")], None))
    assert ways, f"{spec.name}: no way into `image-tagger publish` is tested"
    for env, flags, stdin in ways:
        argv = ["publish", "--workspace", str(tmp_path), "--image", SAMPLE, "--username", "ci", *flags]
        done = run_cli(*argv, env=env, stdin=stdin)
        assert done.returncode == 2 and "[redacted]" in done.stderr, explain(done)
        assert SAMPLE not in done.stdout + done.stderr, explain(done)
