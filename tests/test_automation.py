"""Preview decisions without a registry: joining policies to repositories, outlook lines, commit messages."""

from __future__ import annotations

import time

import pytest

from image_tagger.edges import manifests
from image_tagger.fluxrules import automation, commitmsg, policy, standard
from image_tagger.fluxrules.goports.goregex import GoRegexError, GoRegexp
from image_tagger.fluxrules.setters import Change
from image_tagger.model.errors import InputError
from image_tagger.model.git import GitContext
from image_tagger.model.imagename import parse_image
from image_tagger.model.plan import NamingOptions
from image_tagger.rules.naming import plan_tags
from image_tagger.rules.report import flux_verdicts

REPO = {
    "apiVersion": "image.toolkit.fluxcd.io/v1",
    "kind": "ImageRepository",
    "metadata": {"name": "app", "namespace": "flux-system"},
    "spec": {"image": "docker.io/acme/app", "exclusionList": ["^.*\\.sig$", "^debug-"]},
}


def policy_object(name: str, spec: dict, namespace: str = "flux-system") -> dict:
    return {
        "apiVersion": "image.toolkit.fluxcd.io/v1",
        "kind": "ImagePolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"imageRepositoryRef": {"name": "app"}, **spec},
    }


OBJECTS = [
    REPO,
    policy_object("app-production", standard.release_policy(1)),
    policy_object("app-staging", standard.branch_policy()),
    policy_object("orphan", standard.release_policy(1), namespace="other"),
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app"}},
]
TAGS = ["1.0.0", "1.4.2", "1.5.0-rc.1", "2.0.0", "main-3f2c1a9-1764110000", "main-0b1c2d3-1764200000", "debug-1.9.9"]
DIGEST = "sha256:" + "4" * 64
# The registry's digests, by image:tag: production reflects the digest of the release it selects.
DIGESTS = {"docker.io/acme/app:1.4.2": DIGEST}


def test_targets_join_policies_to_their_repository():
    targets = automation.find_targets(OBJECTS)
    assert [(t.key, t.image) for t in targets] == [
        ("flux-system/app-production", "docker.io/acme/app"),
        ("flux-system/app-staging", "docker.io/acme/app"),
        ("other/orphan", None),
    ]
    assert targets[0].exclusions.patterns == ("^.*\\.sig$", "^debug-")


def test_predictions_follow_flux():
    predictions = automation.predict(
        automation.find_targets(OBJECTS), automation.KnownTags({"docker.io/acme/app": TAGS}, DIGESTS)
    )
    assert [p.as_dict()["selected"] for p in predictions] == ["1.4.2", "main-0b1c2d3-1764200000", None]
    assert [p.digest for p in predictions] == [DIGEST, "", ""]  # only production reflects digests
    assert [str(p.ref) for p in predictions[:2]] == [
        f"docker.io/acme/app:1.4.2@{DIGEST}",
        "docker.io/acme/app:main-0b1c2d3-1764200000",
    ]
    assert "not in the overlay" in predictions[2].error


def test_outlook_says_what_a_new_tag_changes():
    targets = automation.find_targets(OBJECTS)[:2]
    tags = ["1.0.0", "main-3f2c1a9-1764110000"]
    assert automation.outlook(targets, [*tags, "1.1.0"], "acme/app", "1.1.0") == [
        "flux-system/app-production (1.x): 1.0.0 → 1.1.0",
        "flux-system/app-staging (numerical asc): ignored: tag does not match the policy's filter",
    ]
    assert automation.outlook(targets, tags, "docker.io/acme/app", "2.0.0")[0].endswith("ignored: other major")
    assert automation.outlook(targets, ["1.5.0", *tags], "docker.io/acme/app", "1.2.0")[0].endswith(
        "not the newest, stays on 1.5.0"
    )
    assert automation.outlook(targets, tags, "docker.io/acme/app", "1.3.0-rc.1")[0].endswith("ignored: prerelease")
    assert automation.outlook(targets, tags, "ghcr.io/acme/app", "1.1.0") == []


def test_objects_are_parsed_once_and_their_patterns_compiled_once(monkeypatch):
    """Before: every prediction re-read the spec dict and compiled filterTags and the exclusion list again
    (and why_ignored compiled the filter once more): 3 policies x 20 predictions compiled ~180 patterns."""
    compiled: list[str] = []

    class Counting(GoRegexp):
        def __init__(self, pattern: str) -> None:
            compiled.append(pattern)
            super().__init__(pattern)

    monkeypatch.setattr(policy, "GoRegexp", Counting)
    targets = automation.find_targets(OBJECTS)
    at_parse = len(compiled)
    assert at_parse <= 6  # three filterTags patterns, the two exclusions, Flux's default (for the orphan) once
    for _ in range(20):
        automation.predict(targets, automation.KnownTags({"docker.io/acme/app": TAGS}, DIGESTS))
        automation.outlook(targets, TAGS, "acme/app", "1.9.0")
    assert targets[0].spec.why_ignored("main-3f2c1a9-1") == "ignored: not a release version"
    assert len(compiled) == at_parse
    assert targets[0].exclusions is targets[1].exclusions  # one ImageRepository, compiled for both policies


def test_a_policy_is_described_by_the_choice_flux_makes():
    """Flux's factory skips a null member: `semver: null` beside `alphabetical` is an alphabetical policy.
    Before: described from the dict's keys, the outlook labelled it `()`."""
    spec = {"policy": {"semver": None, "alphabetical": {"order": "desc"}}}
    targets = automation.find_targets([REPO, policy_object("letters", spec)])
    assert automation.outlook(targets, ["b"], "acme/app", "a") == ["flux-system/letters (alphabetical desc): b → a"]
    assert isinstance(targets[0].spec.choice, policy.OrderChoice) and targets[0].spec.choice.order == "DESC"


def test_verdicts_of_the_shipped_policies():
    ctx = GitContext(event="push", ref="refs/tags/v2.0.0", sha="a" * 40)
    plan = plan_tags(ctx, parse_image("acme/app"), NamingOptions(), now=1)
    assert [v.picks for v in flux_verdicts(plan, major=1)] == [False, False]
    assert [v.picks for v in flux_verdicts(plan, major=2)] == [True, False]
    ctx = GitContext(event="push", ref="refs/heads/main", sha="a" * 40, push_time=5)
    plan = plan_tags(ctx, parse_image("acme/app"), NamingOptions(), now=1)
    assert [v.picks for v in flux_verdicts(plan, major=1)] == [False, True]


TEMPLATE = """Update images ({{ .AutomationObject }})

{{ range .Changed.Changes -}}
- {{ .OldValue }} -> {{ .NewValue }} ({{ .Setter }})
{{ end -}}
"""


def test_commit_message_renders_like_go_text_template():
    changes = [
        Change("ns:p", "a:1.0.0", "a:1.1.0", 0),
        Change("ns:p:tag", "1.0.0", "1.1.0", 0),
    ]
    assert commitmsg.render(TEMPLATE, ("ns", "auto"), changes) == (
        "Update images (ns/auto)\n\n- a:1.0.0 -> a:1.1.0 (ns:p)\n- 1.0.0 -> 1.1.0 (ns:p:tag)\n"
    )
    assert commitmsg.render("", ("ns", "auto"), changes) == commitmsg.DEFAULT_MESSAGE
    assert commitmsg.render("{{ .Values.env }}: {{.AutomationObject.Name}}", ("n", "a"), [], {"env": "prod"}) == (
        "prod: a"
    )


def test_unsupported_template_is_refused_not_guessed():
    with pytest.raises(commitmsg.UnsupportedTemplate):
        commitmsg.render("{{ .Updated }}", ("ns", "auto"), [])
    with pytest.raises(commitmsg.UnsupportedTemplate):
        commitmsg.render("{{ range .Changed.Changes }}x", ("ns", "auto"), [])


def test_summary_and_overlay_give_the_same_reason():
    """The shipped release policy and an overlay's copy of it explain a refusal in the same words."""
    ctx = GitContext(event="push", ref="refs/tags/v2.0.0-rc.1", sha="a" * 40)
    plan = plan_tags(ctx, parse_image("acme/app"), NamingOptions(), now=1)
    (release, _) = flux_verdicts(plan, major=1)
    targets = automation.find_targets(OBJECTS)[:1]
    assert automation.outlook(targets, ["1.0.0"], "acme/app", plan.version)[0].endswith(release.reason)
    assert release.reason == "ignored: other major"


def test_automation_applies_only_the_policies_its_selector_matches(tmp_path):
    """Two images sharing one update path: each automation commits only its own image's marker."""
    (tmp_path / "apps").mkdir()
    for name in ("shop", "cart"):
        (tmp_path / "apps" / f"{name}.yaml").write_text(
            f'image: docker.io/acme/{name}:1.0.0 # {{"$imagepolicy": "flux-system:{name}-production"}}\n'
        )
    objects = []
    for name in ("shop", "cart"):
        repo = {
            **REPO,
            "metadata": {"name": name, "namespace": "flux-system"},
            "spec": {"image": f"docker.io/acme/{name}"},
        }
        pol = policy_object(f"{name}-production", standard.release_policy(1))
        pol["metadata"]["labels"] = {"image.flux-ci-cd.io/name": name}
        pol["spec"]["imageRepositoryRef"] = {"name": name}
        auto = {
            "apiVersion": "image.toolkit.fluxcd.io/v1",
            "kind": "ImageUpdateAutomation",
            "metadata": {"name": name, "namespace": "flux-system"},
            "spec": {
                "update": {"path": "./apps"},
                "policySelector": {"matchLabels": {"image.flux-ci-cd.io/name": name}},
            },
        }
        objects += [repo, pol, auto]
    tags = {"docker.io/acme/shop": ["1.1.0"], "docker.io/acme/cart": ["1.2.0"]}
    digests = {"docker.io/acme/shop:1.1.0": DIGEST, "docker.io/acme/cart:1.2.0": "sha256:" + "c" * 64}
    predictions = automation.predict(automation.find_targets(objects), automation.KnownTags(tags, digests))
    commits = automation.plan_commits(tmp_path, automation.find_automations(objects), predictions)
    changed = {c.automation.name: [(u.path, [change.new for change in u.changes]) for u in c.updates] for c in commits}
    assert changed == {
        "shop": [("apps/shop.yaml", [f"docker.io/acme/shop:1.1.0@{DIGEST}"])],
        "cart": [("apps/cart.yaml", ["docker.io/acme/cart:1.2.0@sha256:" + "c" * 64])],
    }


def test_commit_message_lists_each_change_once():
    change = Change("ns:p", "a:1", "a:2", 0)
    assert commitmsg.render(TEMPLATE, ("ns", "auto"), [change, change]).count("- a:1 -> a:2") == 1


# --- invalid policies and hostile input are errors, not "nothing selected" ---------------------------------


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ({"filterTags": {"pattern": "(?=x)"}}, "spec.filterTags.pattern: invalid regular expression"),
        ({"filterTags": {"pattern": r"\pL{1000}\pL{1000}"}}, "pattern too large"),
        ({"policy": {"semver": {"range": "not a range"}}}, "spec.policy.semver.range"),
        ({"policy": {"alphabetical": {"order": "sideways"}}}, "invalid order 'sideways'"),
        ({"filterTags": {"pattern": ".*", "extract": 5}}, "spec.filterTags.extract"),
        ({"digestReflectionPolicy": "ifnotpresent"}, "spec.digestReflectionPolicy: 'ifnotpresent' is not accepted"),
        ({"interval": "5m"}, "spec.interval is only accepted when spec.digestReflectionPolicy is set to 'Always'"),
        ({"digestReflectionPolicy": "Always"}, "spec.interval must be set when spec.digestReflectionPolicy is set"),
    ],
)
def test_an_invalid_policy_in_an_overlay_is_an_error_naming_it(spec: dict, why: str):
    broken = policy_object("app-broken", {**standard.release_policy(1), **spec})
    with pytest.raises(policy.InvalidPolicy) as error:
        automation.find_targets([*OBJECTS, broken])
    assert str(error.value).startswith("ImagePolicy flux-system/app-broken is invalid: ")
    assert why in str(error.value) and "\n" not in str(error.value)


def test_an_invalid_exclusion_list_is_an_error_naming_the_policy():
    repo = {**REPO, "spec": {**REPO["spec"], "exclusionList": ["(?<!x)y"]}}
    with pytest.raises(policy.InvalidPolicy, match="ImagePolicy flux-system/app-production is invalid: spec.excl"):
        automation.find_targets([repo, OBJECTS[1]])


def test_a_valid_policy_that_selects_nothing_is_still_a_prediction():
    [production] = automation.find_targets([REPO, OBJECTS[1]])
    [prediction] = automation.predict(
        [production], automation.KnownTags({"docker.io/acme/app": ["2.0.0", "main-3f2c1a9-1"]})
    )
    assert prediction.selected is None and "unable to determine latest version" in prediction.error


def test_re2_memory_is_bounded_and_go_patterns_still_compile():
    started = time.monotonic()
    with pytest.raises(GoRegexError, match="needs more than 32 MiB"):
        GoRegexp(r"\pL{1000}\pL{1000}\pL{1000}")
    assert time.monotonic() - started < 2  # with 1 GiB this compiled for seconds and took ~0.6 GB
    assert GoRegexp(r"^\pL{1000}$").matches("é" * 1000)  # Go compiles it; so do we


@pytest.mark.parametrize("opener", ["[", "{a: ", "- "])
def test_deeply_nested_yaml_is_an_input_error_not_a_recursion_error(tmp_path, opener: str):
    closer = {"[": "]", "{a: ": "}", "- ": ""}[opener]
    text = opener * 5000 + "x" + closer * 5000 if closer else "".join("  " * i + "- " for i in range(150)) + "x"
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match="nested deeper than 100 levels"):
        manifests.load_objects(path)


def test_yaml_at_the_depth_limit_loads(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("[" * 99 + "]" * 99 + "\n---\n" + yaml_of(OBJECTS[0]))
    assert manifests.load_objects(path) == [OBJECTS[0]]


def yaml_of(obj: dict) -> str:
    import io

    from ruamel.yaml import YAML

    out = io.StringIO()
    YAML(typ="safe").dump(obj, out)
    return out.getvalue()
