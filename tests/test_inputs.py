"""One input model: the action's INPUT_* and the CLI's flags mean the same thing, and bad values are refused.

The parity tests feed the same raw values through both edges (the action's `raw_inputs` and the CLI's
parser) and compare the typed results; the property tests throw arbitrary text at the model and the
naming contract: any input gives a valid tag or an InputError, never another exception.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.cli import assert_input_error, run_cli

from image_tagger.entry import cli
from image_tagger.model.errors import InputError
from image_tagger.model.git import GitContext
from image_tagger.model.inputs import PublishInputs
from image_tagger.rules import inputs
from image_tagger.rules.inputs import raw_inputs
from image_tagger.rules.naming import plan_tags

REPO = Path(__file__).resolve().parents[1]
DOCKER_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    return tmp_path


def via_action(values: dict[str, str], workspace: Path) -> PublishInputs:
    env = {f"INPUT_{name.upper()}": value for name, value in values.items()}
    return inputs.parse(raw_inputs(env), workspace)


def via_cli(values: dict[str, str], workspace: Path) -> PublishInputs:
    argv = ["publish", "--workspace", str(workspace)]
    for name, value in values.items():
        argv += [f"--{name}", value]
    args = cli.build_parser().parse_args(argv)
    return inputs.parse(cli._raw_inputs(args), workspace)


def test_build_arg_still_works_as_the_old_spelling_of_build_args(workspace: Path) -> None:
    args = cli.build_parser().parse_args(["publish", "--image", "a/b", "--build-arg", "A=1", "--build-args", "B=2"])
    assert inputs.parse(cli._raw_inputs(args), workspace).build.build_args == {"A": "1", "B": "2"}


@pytest.mark.parametrize(
    "values",
    [
        {"image": "acme/app", "timestamp": "1764110000"},
        {"image": "acme/app", "file": "docker/Dockerfile", "context": "docker"},
        {"image": "acme/app", "pull": "TRUE", "no-cache": "False", "floating-tags": "true"},
        {"image": "ghcr.io/acme/app", "platforms": "linux/amd64, linux/arm64", "target": "final"},
        {"image": "acme/app", "registry": "127.0.0.1:5000", "sha-length": "12", "major-version": "v2"},
        {"image": "acme/app", "cache-from": "type=registry,ref=acme/app:cache", "no-cache": "true"},
        {"image": "acme/app", "builder": "Legacy", "build-args": "A=1\nB=two words"},
        {"image": "acme/app", "push": "FALSE", "tag-prefix": "app/", "timestamp": "commit"},
        {"image": "acme/app", "overlay": "docker", "promote": "Never", "overwrite-releases": "true"},
    ],
)
def test_the_action_and_the_cli_read_the_same_values_alike(values: dict[str, str], workspace: Path) -> None:
    assert via_action(values, workspace) == via_cli(values, workspace)


def test_several_receivers_read_alike_from_lines_and_from_repeated_flags(workspace: Path) -> None:
    """One URL per line of the input is one `--flux-receiver-url` each; the tokens come as lines in both."""
    urls = ("https://flux.prod.example.com/hook/0a1b", "https://flux.staging.example.com/hook/2c3d")
    tokens = {"flux-receiver-secret": "tok-prod\ntok-staging\n"}  # IMAGE_TAGGER_RECEIVER_SECRET, as cmd_publish adds it
    action = via_action({"image": "acme/app", "flux-receiver-url": "\n".join(urls) + "\n", **tokens}, workspace)
    flags = [arg for url in urls for arg in ("--flux-receiver-url", url)]
    args = cli.build_parser().parse_args(["publish", "--image", "acme/app", "--workspace", str(workspace), *flags])
    assert action == inputs.parse(cli._raw_inputs(args) | tokens, workspace)
    assert [(r.url, r.secret) for r in action.receivers] == [(urls[0], "tok-prod"), (urls[1], "tok-staging")]


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"pull": "yes"}, "pull"),
        ({"no-cache": "1"}, "no-cache"),
        ({"floating-tags": "on"}, "floating-tags"),
        ({"timestamp": "²"}, "timestamp"),
        ({"timestamp": "17641100000000"}, "timestamp"),
        ({"sha-length": "²"}, "sha-length"),
        ({"major-version": "²"}, "major-version"),
        ({"builder": "kaniko"}, "builder"),
        ({"platforms": "amd64"}, "platforms"),
        ({"cache-to": "type=s3,bucket=x"}, "cache-to"),
        ({"file": "../outside/Dockerfile"}, "file"),
        ({"context": "../.."}, "context"),
        ({"build-args": "not a pair"}, "build-args"),
        ({"registry": "http://127.0.0.1:5000"}, "registry 'http://127.0.0.1:5000' carries a scheme (http://)"),
        ({"registry": "https://ghcr.io"}, "registry 'https://ghcr.io' carries a scheme (https://)"),
        ({"registry": "ghcr.io/acme"}, "registry 'ghcr.io/acme' is not a registry host; accepted: host[:port]"),
        ({"registry": "ci@ghcr.io"}, "registry 'ci@ghcr.io' is not a registry host; accepted: host[:port]"),
        ({"registry": "127.0.0.1:99999"}, "registry '127.0.0.1:99999' has port 99999, not 1 to 65535"),
        ({"image": "127.0.0.1:99999/app"}, "image '127.0.0.1:99999/app': registry '127.0.0.1:99999' has port 99999"),
        ({"image": "http://127.0.0.1:5000/app"}, "image 'http://127.0.0.1:5000/app' carries a scheme"),
        ({"image": "ci@127.0.0.1:5000/app"}, "image 'ci@127.0.0.1:5000/app' carries a user"),
    ],
)
def test_bad_values_are_refused_alike_by_both_edges(values: dict[str, str], named: str, workspace: Path) -> None:
    values = {"image": "acme/app", **values}
    for parse in (via_action, via_cli):
        with pytest.raises(InputError, match=re.escape(named)):
            parse(values, workspace)


@pytest.mark.parametrize("registry", ["http://127.0.0.1:5000", "127.0.0.1:5000/v2", "127.0.0.1:65536"])
def test_a_registry_beyond_host_and_port_is_exit_2_not_dropped(registry: str) -> None:
    """Before: `http://` was dropped silently (the name then pointed at whatever the host meant without it)."""
    done = run_cli("tags", "--image", "acme/app", "--registry", registry, "--ref", "refs/heads/main", "--sha", "a" * 40)
    assert_input_error(done, f"registry {registry!r}", "accepted: host[:port]")


def test_secrets_are_parsed_and_never_echoed(workspace: Path) -> None:
    parsed = inputs.parse_secrets("npm_token=abc=def\n\nGH.token-2=xyz\n")
    assert [(s.id, s.value) for s in parsed] == [("npm_token", "abc=def"), ("GH.token-2", "xyz")]
    assert "abc=def" not in repr(parsed)
    for bad in ("no-separator-but-secret-value", "id=", "a b=value", "x=1\nx=2"):
        with pytest.raises(InputError) as refused:
            inputs.parse_secrets(bad)
        assert "value" not in str(refused.value).replace("id=value", "").replace("the value", "")
        assert "secret-value" not in str(refused.value)


def test_the_legacy_builder_refuses_what_needs_buildkit(workspace: Path) -> None:
    for name, value in (("secrets", "a=b"), ("platforms", "linux/arm64"), ("cache-to", "type=inline")):
        with pytest.raises(InputError, match=f"{name} need BuildKit"):
            via_action({"image": "acme/app", "builder": "legacy", name: value}, workspace)


def test_a_symlink_out_of_the_workspace_is_refused(workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    outside = tmp_path_factory.mktemp("outside")
    (outside / "Dockerfile").write_text("FROM scratch\n")
    (workspace / "escape").symlink_to(outside)
    with pytest.raises(InputError, match="outside the workspace"):
        via_action({"image": "acme/app", "context": "escape"}, workspace)


EXAMPLES = {"naming": 0, "model": 0}
raw_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ref=st.one_of(raw_text, st.builds("refs/heads/{}".format, raw_text), st.builds("refs/tags/{}".format, raw_text)),
    sha=st.one_of(raw_text, st.text("0123456789abcdef", min_size=4, max_size=40)),
    values=st.fixed_dictionaries(
        {},
        optional={
            name: raw_text
            for name in ("timestamp", "sha-length", "major-version", "tag-prefix", "push", "floating-tags")
        },
    ),
    push_time=st.one_of(st.none(), st.integers(min_value=0, max_value=9_999_999_999)),
)
def test_any_naming_input_gives_a_docker_tag_or_an_input_error(
    ref: str, sha: str, values: dict[str, str], push_time: int | None
) -> None:
    EXAMPLES["naming"] += 1
    try:
        image, naming = inputs.parse_naming({"image": "acme/app", **values})
        plan = plan_tags(GitContext(event="push", ref=ref, sha=sha, push_time=push_time), image, naming, now=1)
    except InputError as refused:
        assert "\n" not in str(refused).strip()
        return
    for tag in plan.tag_names:
        assert DOCKER_TAG.fullmatch(tag), tag


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.fixed_dictionaries(
        {},
        optional={
            name: raw_text
            for name in (
                *("image", "registry", "context", "file", "build-args", "secrets", "platforms", "target"),
                *("cache-from", "cache-to", "pull", "no-cache", "builder", "push", "timestamp"),
            )
        },
    )
)
def test_any_publish_input_is_typed_or_refused_with_an_input_error(values: dict[str, str], workspace: Path) -> None:
    EXAMPLES["model"] += 1
    try:
        inputs.parse(values, workspace)
    except InputError as refused:
        assert "\n" not in str(refused).strip()


def test_fuzzing_ran(capsys: pytest.CaptureFixture[str]) -> None:
    """Runs after the property tests (file order) and reports how many examples they tried."""
    with capsys.disabled():
        print(f"\nhypothesis examples: naming contract {EXAMPLES['naming']}, input model {EXAMPLES['model']}")
    assert EXAMPLES["naming"] >= 100 and EXAMPLES["model"] >= 100
