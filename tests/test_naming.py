"""The naming contract, table-driven: what clusters and Flux policies rely on."""

from __future__ import annotations

import pytest

from image_tagger.model.errors import InputError
from image_tagger.model.git import GitContext
from image_tagger.model.imagename import parse_image
from image_tagger.model.plan import NamingOptions
from image_tagger.model.states import PlanKind, PushMode
from image_tagger.rules.inputs import parse_naming
from image_tagger.rules.naming import branch_slug, plan_tags

SHA = "3f2c1a9e5b7d0c4a1f2e3d4c5b6a79881726354a"
NOW = 1764119999
PUSHED = 1764110000


def plan(ref: str, *, event: str = "push", image: str = "acme/app", **options):
    ctx = GitContext(
        event=event,
        ref=ref,
        sha=options.pop("sha", SHA),
        push_time=options.pop("push_time", PUSHED),
        commit_time=options.pop("commit_time", None),
        pr_number=options.pop("pr_number", None),
    )
    if "push" in options:
        options["push"] = PushMode(options["push"])
    return plan_tags(ctx, parse_image(image), NamingOptions(**options), now=NOW)


@pytest.mark.parametrize(
    ("ref", "version"),
    [
        ("refs/tags/v1.4.2", "1.4.2"),
        ("refs/tags/1.4.2", "1.4.2"),
        ("refs/tags/v0.0.0", "0.0.0"),
        ("refs/tags/v1.5.0-rc.1", "1.5.0-rc.1"),
        ("refs/tags/v2.0.0-alpha.0.beta-1", "2.0.0-alpha.0.beta-1"),
        ("refs/tags/v10.20.30", "10.20.30"),
        ("v1.4.2", "1.4.2"),
    ],
)
def test_release_tags_drop_the_v(ref, version):
    p = plan(ref)
    assert (p.kind, p.version, p.push) == (PlanKind.RELEASE, version, True)
    assert p.refs == (f"docker.io/acme/app:{version}",)


@pytest.mark.parametrize(
    "ref",
    [
        "refs/tags/v1.2",
        "refs/tags/1.2.3.4",
        "refs/tags/v01.2.3",
        "refs/tags/v1.02.3",
        "refs/tags/v1.2.3-01",
        "refs/tags/release-42",
        "refs/tags/V1.2.3",
        "refs/tags/v1.2.3-",
        "refs/tags/vv1.2.3",
        "refs/tags/ v1.2.3",
    ],
)
def test_non_versions_are_refused(ref):
    with pytest.raises(InputError, match="git tag .* accepted: vMAJOR.MINOR.PATCH"):
        plan(ref)


def test_build_metadata_is_refused_because_docker_tags_cannot_carry_plus():
    with pytest.raises(InputError, match=r"build metadata \(\+build.5\)"):
        plan("refs/tags/v1.2.3+build.5")


def test_tag_prefix_is_stripped_first():
    assert plan("refs/tags/app/v1.2.3", tag_prefix="app/").version == "1.2.3"
    with pytest.raises(InputError, match="does not start with tag-prefix"):
        plan("refs/tags/other/v1.2.3", tag_prefix="app/")


def test_major_version_refuses_other_majors():
    assert plan("refs/tags/v1.9.0", major_version=1).version == "1.9.0"
    with pytest.raises(InputError, match="major 2 but major-version is 1"):
        plan("refs/tags/v2.0.0", major_version=1)


def test_floating_tags_only_on_request_and_never_for_prereleases():
    assert plan("refs/tags/v1.4.2").extra_tags == ()
    assert plan("refs/tags/v1.4.2", floating_tags=True).tag_names == ("1.4.2", "1.4", "1", "latest")
    assert plan("refs/tags/v1.5.0-rc.1", floating_tags=True).tag_names == ("1.5.0-rc.1",)


@pytest.mark.parametrize(
    ("branch", "slug"),
    [
        ("main", "main"),
        ("Feature/Login-Page", "feature-login-page"),
        ("fix//double  space", "fix-double-space"),
        ("-.leading", "leading"),
        ("..-x", "x"),
        ("release/1.2", "release-1.2"),
        ("dependabot/npm_and_yarn/a@b", "dependabot-npm_and_yarn-a-b"),
        ("ünïcode", "n-code"),
    ],
)
def test_branch_slug(branch, slug):
    assert branch_slug(branch) == slug


def test_branch_push_uses_push_time():
    p = plan("refs/heads/main")
    assert (p.kind, p.version, p.push) == (PlanKind.BRANCH, f"main-3f2c1a9-{PUSHED}", True)
    assert p.timestamp_source == "push"


def test_timestamp_falls_back_to_commit_then_clock_and_says_so():
    p = plan("refs/heads/main", push_time=None, commit_time=1764000000)
    assert (p.version, p.timestamp_source) == ("main-3f2c1a9-1764000000", "commit")
    assert p.notes and "commit" in p.notes[0]
    p = plan("refs/heads/main", push_time=None)
    assert (p.version, p.timestamp_source) == (f"main-3f2c1a9-{NOW}", "build")


def test_timestamp_source_override():
    assert plan("refs/heads/main", timestamp="build").version == f"main-3f2c1a9-{NOW}"
    assert plan("refs/heads/main", commit_time=5, timestamp="commit").version == "main-3f2c1a9-5"
    assert plan("refs/heads/main", timestamp_value=42).version == "main-3f2c1a9-42"


def test_sha_length_and_validation():
    assert plan("refs/heads/main", sha_length=12).version == f"main-3f2c1a9e5b7d-{PUSHED}"
    with pytest.raises(InputError, match="sha 'xyz' is not a commit id"):
        plan("refs/heads/main", sha="xyz")


def test_long_branch_is_cut_to_128_characters():
    p = plan("refs/heads/" + "a" * 300)
    assert len(p.version) == 128
    assert p.version.endswith(f"-3f2c1a9-{PUSHED}")


def test_unusable_branch_is_refused():
    with pytest.raises(InputError, match="leaves nothing usable"):
        plan("refs/heads/---")


def test_pull_request_builds_without_push_unless_asked():
    p = plan("refs/pull/17/merge", event="pull_request")
    assert (p.kind, p.version, p.push) == (PlanKind.PULL_REQUEST, f"pr-17-3f2c1a9-{PUSHED}", False)
    assert plan("refs/pull/17/merge", event="pull_request", push="true").push is True
    p = plan("refs/heads/feature", event="pull_request", pr_number=9)
    assert p.version == f"pr-9-3f2c1a9-{PUSHED}"
    with pytest.raises(InputError, match="pull request number is missing"):
        plan("refs/heads/feature", event="pull_request")


def test_push_modes():
    assert plan("refs/heads/main", push="false").push is False
    assert plan("refs/tags/v1.2.3", push="false").push is False
    assert plan("refs/tags/v1.2.3", push="auto").push is True


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"push": "maybe"}, r"push 'maybe' is not accepted; accepted: auto \| true \| false"),
        ({"timestamp": "later"}, r"timestamp 'later' .* push \| commit \| build"),
        ({"timestamp": "bogus"}, "timestamp 'bogus'"),
    ],
)
def test_naming_options_are_checked_once_by_the_input_parser(raw: dict[str, str], message: str) -> None:
    """plan_tags takes NamingOptions that rules.inputs has typed: the refusal happens there, for every ref."""
    with pytest.raises(InputError, match=message):
        parse_naming({"image": "acme/app", **raw})


@pytest.mark.parametrize(
    ("image", "registry", "name"),
    [
        ("acme/app", "docker.io", "docker.io/acme/app"),
        ("app", "docker.io", "docker.io/library/app"),
        ("index.docker.io/acme/app", "docker.io", "docker.io/acme/app"),
        ("ghcr.io/acme/app", "docker.io", "ghcr.io/acme/app"),
        ("acme/app", "127.0.0.1:5000", "127.0.0.1:5000/acme/app"),
        ("127.0.0.1:5000/acme/app", "127.0.0.1:5000", "127.0.0.1:5000/acme/app"),
        ("localhost/team/sub/app", "docker.io", "localhost/team/sub/app"),
        ("acme/my_app.v2", "docker.io", "docker.io/acme/my_app.v2"),
    ],
)
def test_image_names(image, registry, name):
    assert parse_image(image, registry).name == name


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ("acme/app:1.0", "carries a tag"),
        ("127.0.0.1:5000/acme/app:1.0", "carries a tag"),
        ("acme/app@sha256:" + "a" * 64, "carries a digest"),
        ("acme/App", "not a valid repository name"),
        ("acme//app", "not a valid repository name"),
        ("acme/-app", "not a valid repository name"),
        ("", "image is empty"),
    ],
)
def test_bad_image_names(image, message):
    with pytest.raises(InputError, match=message):
        parse_image(image)


def test_conflicting_registries_are_refused():
    with pytest.raises(InputError, match="names registry ghcr.io but registry input is quay.io"):
        parse_image("ghcr.io/acme/app", "quay.io")
    with pytest.raises(InputError, match="registry 'bad host' is not a registry host"):
        parse_image("acme/app", "bad host")


@pytest.mark.parametrize(
    ("ref", "kind"),
    [
        ("v1.4.2", "release"),
        ("1.4.2-rc.1", "release"),
        ("v2-rewrite", "branch"),
        ("2024-cleanup", "branch"),
        ("main", "branch"),
    ],
)
def test_bare_refs_are_tags_only_when_they_read_like_versions(ref, kind):
    assert plan(ref).kind == kind


def test_release_tags_longer_than_docker_allows_are_refused():
    with pytest.raises(InputError, match="longer than 128"):
        plan("refs/tags/v1.2.3-" + "a" * 130)
