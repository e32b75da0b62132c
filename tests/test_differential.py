"""The differential tier: the same generated inputs to our offline tools and to the real Flux controllers.

Selection: seeded tag sets (releases, prereleases, other majors, `v` prefixes, main-<sha>-<ts> builds, `.sig`
tags, odd tags) in our registry, one ImageRepository each (some with an exclusionList), twenty generated
ImagePolicies per repository; every policy's status (latestRef, or Ready=False) must equal `select_tag` on
`scan_tags`' list. Update: generated files with setter markers (and Flux's own setter fixtures), committed
by real ImageUpdateAutomations (one per folder, each pushing its own branch with its own messageTemplate),
must equal, byte for byte, what `plan_updates` writes, and each commit message what `commitmsg.render` gives
(order aside: see same_message). Some of those policies reflect digests (IfNotPresent, Always): their
`latestRef.digest` must be the one our registry client reads, and their markers get `name:tag@digest`.

The seed is printed; DIFFERENTIAL_SEED=<n> replays a run. A disagreement is a bug in our reproduction.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml
from support.flux_cluster import git, kubectl, ready_status
from support.registry import push_tags

from image_tagger.demo import cluster
from image_tagger.edges.registry.tags import RegistryTags
from image_tagger.fluxrules import commitmsg, policy, setters
from image_tagger.fluxrules.goports.goregex import GoRegexp
from image_tagger.fluxrules.imageref import ImageRef

REPOSITORIES = 50
POLICIES_PER_REPOSITORY = 20
SETTLE_SECONDS = 240  # bounded wait for every object of one batch
SELECT_NS = "select"
UPDATE_NS = "update"


@pytest.fixture(scope="module")
def seed() -> int:
    value = int(os.environ.get("DIFFERENTIAL_SEED") or random.SystemRandom().randrange(2**32))
    return value


def apply(info: cluster.ClusterInfo, objects: list[dict]) -> None:
    """One multi-document YAML per batch, server-side applied (one request per object)."""
    kubectl(info, "apply", "--server-side", "--filename=-", stdin=yaml.safe_dump_all(objects), timeout=300)


def settle(info: cluster.ClusterInfo, namespace: str, kind: str, done: Callable[[dict], bool]) -> dict[str, dict]:
    """Every `kind` in `namespace` by name, once `done` holds for all; fails naming the stragglers."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        found = json.loads(kubectl(info, f"--namespace={namespace}", "get", kind, "--output=json", timeout=120))
        objects = {item["metadata"]["name"]: item for item in found["items"]}
        waiting = sorted(name for name, item in objects.items() if not done(item))
        if not waiting:
            return objects
        assert time.monotonic() < deadline, f"{len(waiting)} {kind} unsettled, e.g. {objects[waiting[0]]}"
        time.sleep(2)


def namespace(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def image_repository(name: str, ns: str, image: str, exclusions: list[str] | None) -> dict:
    spec: dict = {"image": image, "interval": "10m", "insecure": True, "provider": "generic"}
    if exclusions is not None:
        spec["exclusionList"] = exclusions
    kind = {"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageRepository"}
    return {**kind, "metadata": {"name": name, "namespace": ns}, "spec": spec}


def image_policy(name: str, ns: str, repository: str, spec: dict, labels: dict | None = None) -> dict:
    metadata = {"name": name, "namespace": ns, **({"labels": labels} if labels else {})}
    body = {"imageRepositoryRef": {"name": repository}, **spec}
    return {"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy", "metadata": metadata, "spec": body}


# --- generated tag sets and policies -----------------------------------------------------------------------

EXCLUSIONS: list[list[str] | None] = [None, None, None, [r"^.*\.sig$", "^latest$"], ["^main-"], ["rc"], []]
ODD_TAGS = ["latest", "dev", "pr-12", "17", "203", "1.2", "v2", "2024.01.15", "sha256-" + "ab" * 32 + ".sig"]


def tag_set(rng: random.Random) -> list[str]:
    """Releases of one to three majors, prereleases, `v` twins, main builds with unique times, `.sig` tags."""
    tags: set[str] = set()
    for major in rng.sample(range(4), rng.randint(1, 3)):
        for _ in range(rng.randint(2, 6)):
            version = f"{major}.{rng.randint(0, 5)}.{rng.randint(0, 12)}"
            tags.add(version)
            if rng.random() < 0.2:
                tags.add("v" + version)
            if rng.random() < 0.3:
                tags.add(f"{version}-{rng.choice(['rc', 'beta', 'alpha'])}.{rng.randint(1, 3)}")
            if rng.random() < 0.15:
                tags.add(version + ".sig")
    times = rng.sample(range(1_690_000_000, 1_700_000_000), rng.randint(0, 6))
    tags |= {f"main-{rng.getrandbits(28):07x}-{ts}" for ts in times}
    tags |= set(rng.sample(ODD_TAGS, rng.randint(0, 3)))
    return sorted(tags)


SEMVER_RANGES = [">=1.0.0 <2.0.0", "^1.0", "~1.2", ">=1.0.0-0 <2.0.0-0", "*", ">=2.0.0", "1.x", ">=0.0.0-0"]
SEMVER_RANGES += ["<1.0.0", "^2.0.0-rc", "~0.3", ">=3.0.0 <4.0.0", "2.1.x", ">= 1.2.3, < 3", "^0.0.1"]
FILTERS: list[tuple[str, str, list[str]]] = [
    (r"^main-[a-f0-9]+-(?P<ts>[0-9]+)$", "$ts", ["numerical"]),
    (r"^main-(?P<sha>[a-f0-9]+)-[0-9]+$", "", ["alphabetical"]),
    (r"^main-(?P<sha>[a-f0-9]+)-(?P<ts>[0-9]+)$", "${ts}", ["numerical", "alphabetical"]),
    (r"^v?(?P<version>[0-9]+\.[0-9]+\.[0-9]+)$", "$version", ["semver", "alphabetical"]),
    (r"^(?P<version>[0-9]+\.[0-9]+\.[0-9]+)-rc\.[0-9]+$", "$version", ["semver"]),
    (r"^[0-9]+\.[0-9]+\.[0-9]+-", "", ["semver", "alphabetical"]),
    (r"(?P<n>[0-9]+)$", "$n", ["numerical"]),
    (r"^v", "", ["semver", "alphabetical"]),
]


def policy_spec(rng: random.Random) -> dict:
    kind = rng.choice(["semver", "semver", "numerical", "alphabetical"])
    choice: dict
    if kind == "semver":
        choice = {"range": rng.choice(SEMVER_RANGES)}
    else:
        choice = {"order": rng.choice(["asc", "desc"])} if rng.random() < 0.8 else {}
    spec: dict = {"policy": {kind: choice}}
    usable = [f for f in FILTERS if kind in f[2]]
    if rng.random() < (0.85 if kind != "semver" else 0.35):
        pattern, extract, _ = rng.choice(usable)
        spec["filterTags"] = {"pattern": pattern, **({"extract": extract} if extract else {})}
    if rng.random() < 0.3:  # the digest recorded with the tag (production's IfNotPresent, or Always)
        reflection = rng.choice(["IfNotPresent", "Always"])
        spec |= {"digestReflectionPolicy": reflection, **({"interval": "10m"} if reflection == "Always" else {})}
    return spec


def predicted(spec: dict, stored: list[str]) -> str | None:
    """`select_tag` on the stored list, or None where Flux reports Ready=False (no tag qualifies)."""
    try:
        return policy.select_tag(spec, stored)
    except policy.PolicyFailure:
        return None


def is_tie(spec: dict, stored: list[str]) -> bool:
    """Go iterates filterTags' map in random order, so equal candidates (1.2.0 vs 1.2.0+x) make Flux's pick random:
    a pick that changes when the candidates are reversed is such a tie, not a comparable case."""
    filter_spec = spec.get("filterTags")
    if filter_spec is None:
        return False
    keys = list(policy.filter_tags(GoRegexp(filter_spec["pattern"]), filter_spec.get("extract", ""), stored))
    if not keys:
        return False
    choice = policy.parse_choice(spec["policy"])
    try:
        return choice.latest(keys) != choice.latest(keys[::-1])
    except policy.PolicyFailure:
        return False


@dataclass
class Case:
    repository: str
    image: str
    tags: list[str]
    exclusions: list[str] | None
    policy: str
    spec: dict

    def describe(self) -> str:
        return json.dumps({"tags": self.tags, "exclusionList": self.exclusions, "spec": self.spec})


def generate(rng: random.Random, registry: str) -> list[Case]:
    cases = []
    for r in range(REPOSITORIES):
        tags, exclusions = tag_set(rng), rng.choice(EXCLUSIONS)
        stored = policy.scan_tags(tags, exclusions)
        name = f"repo-{r:02d}"
        made = 0
        while made < POLICIES_PER_REPOSITORY:
            spec = policy_spec(rng)
            if is_tie(spec, stored):
                continue
            image = f"{registry}/diff/{name}"
            cases.append(Case(name, image, tags, exclusions, f"{name}-p{made:02d}", spec))
            made += 1
    return cases


def settled_policy(item: dict) -> bool:
    state = ready_status(item)
    return state == "False" or (state == "True" and "latestRef" in item.get("status", {}))


def test_image_policies_agree_with_select(
    running: cluster.ClusterInfo, seed: int, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    cases = generate(random.Random(seed), running.registry)
    repositories = {case.repository: case for case in cases}
    http = requests.Session()
    for case in repositories.values():
        push_tags(running.registry, f"diff/{case.repository}", case.tags, http)
    apply(running, [namespace(SELECT_NS)])
    apply(running, [image_repository(c.repository, SELECT_NS, c.image, c.exclusions) for c in repositories.values()])
    scanned = settle(running, SELECT_NS, "imagerepositories", lambda item: ready_status(item) == "True")
    for name, case in repositories.items():
        stored = policy.scan_tags(case.tags, case.exclusions)
        assert scanned[name]["status"]["lastScanResult"]["tagCount"] == len(stored), case.describe()
    # Applied after every scan: a policy reconciled before its repository's first scan waits 30 s.
    apply(running, [image_policy(c.policy, SELECT_NS, c.repository, c.spec) for c in cases])
    status = settle(running, SELECT_NS, "imagepolicies", settled_policy)
    disagreements = []
    registry = RegistryTags()
    for case in cases:
        tag = predicted(case.spec, policy.scan_tags(case.tags, case.exclusions))
        reflects = policy.parse_policy(case.spec).reflection != policy.NEVER
        ours = (tag, registry.digest_of(case.image, tag) if tag and reflects else None)
        found = status[case.policy]["status"]
        latest = found["latestRef"] if ready_status(status[case.policy]) == "True" else {}
        theirs = (latest.get("tag"), latest.get("digest"))
        if ours != theirs:
            why = [c.get("message") for c in found.get("conditions", []) if c["type"] == "Ready"]
            disagreements.append(f"{case.policy}: ours {ours!r}, Flux {theirs!r} {why}: {case.describe()}")
    agreed = len(cases) - len(disagreements)
    with capsys.disabled():  # the counts belong in every run's output, not only a failing one's
        took = time.monotonic() - started
        print(
            f"\ndifferential (seed {seed}; DIFFERENTIAL_SEED replays it): "
            f"{len(cases)} pairs, {agreed} agreed ({took:.0f} s)"
        )
    assert not disagreements, f"seed {seed}:\n" + "\n".join(disagreements)


# --- update: generated files with setter markers, committed by the real automation ---------------------------

UPDATE_TAGS = {
    "a": ["1.0.0", "1.3.7", "1.4.2", "2.0.0", "2.1.0", "2.1.1-rc.1", "v1.4.2"],
    "b": ["main-aaaaaaa-1700000000", "main-bbbbbbb-1700000100", "main-0000000-1699999999"],
    "num": ["1", "2", "10"],
}
UPDATE_POLICIES = {
    "a-v1": ("a", {"policy": {"semver": {"range": ">=1.0.0 <2.0.0"}}}),
    "a-v2": ("a", {"policy": {"semver": {"range": "^2.0.0"}}}),
    "b-main": (
        "b",
        {"policy": {"numerical": {}}, "filterTags": {"pattern": "^main-[a-f0-9]+-(?P<ts>[0-9]+)$", "extract": "$ts"}},
    ),
    "num-asc": ("num", {"policy": {"numerical": {"order": "asc"}}}),
    "a-first": ("a", {"policy": {"alphabetical": {"order": "desc"}}}),
    # Digest reflection: the release channel's IfNotPresent, and Always (which needs an interval).
    "a-v1-pin": ("a", {"policy": {"semver": {"range": ">=1.0.0 <2.0.0"}}, "digestReflectionPolicy": "IfNotPresent"}),
    "b-main-always": (
        "b",
        {
            "policy": {"numerical": {}},
            "filterTags": {"pattern": "^main-[a-f0-9]+-(?P<ts>[0-9]+)$", "extract": "$ts"},
            "digestReflectionPolicy": "Always",
            "interval": "10m",
        },
    ),
}
# Digests an old value may carry: made up, or (filled in once pushed) the registry's own for some tag.
OLD_DIGESTS = ["sha256:" + "0" * 64, "sha256:" + "ab" * 32]
AUTOMATIONS = 4
FILES_PER_AUTOMATION = 30
TEMPLATES: list[tuple[str, dict[str, str]]] = [
    ("", {}),
    (
        "{{ .AutomationObject }}: update\n\n{{ range .Changed.Changes -}}\n"
        "- {{ .OldValue }} -> {{ .NewValue }} ({{ .Setter }})\n{{ end -}}\n",
        {},
    ),
    (
        "[{{ .Values.env }}] {{ .AutomationObject.Name }} in {{ .AutomationObject.Namespace }}\n"
        "{{ range .Changed.Changes }}{{ .NewValue }}\n{{ end }}",
        {"env": "prod"},
    ),
    ("Automated:\n{{ range .Changed.Changes }}* {{ .Setter }}\n{{ end }}", {}),
]


def quoted(rng: random.Random, value: str) -> str:
    style = rng.choice(["plain", "plain", "double", "single"])
    return {"plain": value, "double": f'"{value}"', "single": f"'{value}'"}[style]


class Marker:
    """One setter slot: which policy (some unknown to the cluster), and an old value to replace."""

    def __init__(self, rng: random.Random, registry: str) -> None:
        self.policy = rng.choice([*UPDATE_POLICIES, *UPDATE_POLICIES, "missing", "other-ns"])
        ns = "elsewhere" if self.policy == "other-ns" else UPDATE_NS
        self.key = f"{ns}:{self.policy}"
        image = UPDATE_POLICIES.get(self.policy, ("a", {}))[0]
        self.name = rng.choice([f"{registry}/upd/{image}", f"{registry}/upd/{image}", "old.example/app"])
        self.tag = rng.choice([*UPDATE_TAGS[image], "0.0.1"])
        self.digest = rng.choice(OLD_DIGESTS)
        self.pinned = rng.random() < 0.3  # the old full reference already carries a digest

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.tag}" + (f"@{self.digest}" if self.pinned else "")

    def comment(self, kind: str = "") -> str:
        return '# {"$imagepolicy": "' + self.key + (f":{kind}" if kind else "") + '"}'


def deployment_doc(rng: random.Random, registry: str, i: int) -> str:
    containers = ""
    for c in range(rng.randint(1, 3)):
        m = Marker(rng, registry)
        containers += f"        - name: c{c}\n          image: {quoted(rng, m.ref)} {m.comment()}\n"
        if rng.random() < 0.3:
            containers += "          ports:\n            - containerPort: 8080\n"
    return (
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\n  namespace: default\nspec:\n"
        f"  replicas: {rng.randint(1, 3)}\n  template:\n    spec:\n      containers:\n{containers}"
    )


def helm_doc(rng: random.Random, registry: str, i: int) -> str:
    m = Marker(rng, registry)
    return (
        f"apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: app-{i}\n  namespace: default\n"
        f"spec:\n  interval: 5m\n  values:\n    image:\n      repository: {quoted(rng, m.name)} {m.comment('name')}\n"
        f"      tag: {quoted(rng, m.tag)} {m.comment('tag')}\n{digest_field(rng, m, '      ')}"
        "      pullPolicy: IfNotPresent\n"
    )


def digest_field(rng: random.Random, m: Marker, indent: str) -> str:
    """Sometimes a `digest:` field with a `:digest` marker: an old digest, or an empty string (quoted: a value)."""
    if rng.random() < 0.5:
        return ""
    value = rng.choice([m.digest, quoted(rng, m.digest), '""', "''"])
    return f"{indent}digest: {value} {m.comment('digest')}\n"


def kustomization_doc(rng: random.Random, registry: str, i: int) -> str:
    images = ""
    for n in range(rng.randint(1, 2)):
        m = Marker(rng, registry)
        images += f"  - name: app{n}\n    newName: {quoted(rng, m.name)} {m.comment('name')}\n"
        images += f"    newTag: {quoted(rng, m.tag)} {m.comment('tag')}\n{digest_field(rng, m, '    ')}"
    return (
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - deploy.yaml\n"
        f"images:\n{images}"
    )


def case_file(rng: random.Random, registry: str, i: int) -> str:
    makers = [deployment_doc, helm_doc, kustomization_doc]
    docs = [rng.choice(makers)(rng, registry, i) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
    head = "# generated case\n" if rng.random() < 0.2 else ""
    return head + "---\n".join(docs)


FLUX_FIXTURE = (
    Path(__file__).parent / "fixtures/flux-setters/image-automation-controller/internal/update/testdata/setters"
)
# Flux's own TestUpdateWithSetters inputs, their policies renamed to ours (the digest one reflects digests).
FIXTURE_POLICIES = {
    "automation-ns:policy-with-digest": f"{UPDATE_NS}:b-main-always",
    "automation-ns:policy": f"{UPDATE_NS}:a-v1",
    "automation-ns:unchanged": f"{UPDATE_NS}:num-asc",
}


def copy_flux_fixture(target: Path) -> int:
    target.mkdir()
    for source in sorted((FLUX_FIXTURE / "original").iterdir()):
        text = source.read_text()
        for theirs, ours in FIXTURE_POLICIES.items():
            text = text.replace(f'"{theirs}', f'"{ours}')
        (target / source.name).write_text(text)
    return len(list(target.iterdir()))


def same_message(ours: str, theirs: str) -> bool:
    """Flux ranges over .Changed.Changes in Go map order (files, then objects: Result.Changes), random
    across files, so with one change per line only the first line and the set of lines are comparable."""
    return ours.split("\n", 1)[0] == theirs.split("\n", 1)[0] and sorted(ours.split("\n")) == sorted(theirs.split("\n"))


def commit_message(sha: str, where: Path) -> str:
    raw = git("-C", str(where), "cat-file", "commit", sha, strip=False)
    return raw.split("\n\n", 1)[1]


def test_automations_commit_what_update_writes(
    running: cluster.ClusterInfo, seed: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    rng = random.Random(seed)
    http = requests.Session()
    for image, tags in UPDATE_TAGS.items():
        for tag in tags:  # each tag its own content, so each has a digest of its own
            OLD_DIGESTS.append(push_tags(running.registry, f"upd/{image}", [tag], http, {"tag": tag, "image": image}))
    images = {image: f"{running.registry}/upd/{image}" for image in UPDATE_TAGS}
    apply(running, [namespace(UPDATE_NS)])
    apply(running, [image_repository(i, UPDATE_NS, ref, None) for i, ref in images.items()])
    settle(running, UPDATE_NS, "imagerepositories", lambda item: ready_status(item) == "True")
    apply(running, [image_policy(name, UPDATE_NS, i, spec) for name, (i, spec) in UPDATE_POLICIES.items()])
    selected = settle(running, UPDATE_NS, "imagepolicies", settled_policy)
    refs = {}
    registry = RegistryTags()
    for name, (image, spec) in UPDATE_POLICIES.items():
        tag = policy.select_tag(spec, policy.scan_tags(UPDATE_TAGS[image]))
        reflection = policy.parse_policy(spec).reflection
        lookup = lambda image=image, tag=tag: registry.digest_of(images[image], tag)  # noqa: E731
        ref = policy.latest_ref(reflection, ImageRef(images[image], tag), None, lookup)  # a first evaluation
        expected = {"name": ref.name, "tag": ref.tag, **({"digest": ref.digest} if ref.digest else {})}
        assert selected[name]["status"]["latestRef"] == expected, name
        refs[f"{UPDATE_NS}:{name}"] = ref

    work = tmp_path / "config"
    git("init", "--quiet", "--initial-branch=main", str(work))
    for k in range(AUTOMATIONS):
        folder = work / "cases" / f"auto-{k}"
        folder.mkdir(parents=True)
        for i in range(FILES_PER_AUTOMATION):
            (folder / f"case-{i:03d}.yaml").write_text(case_file(rng, running.registry, i))
    copy_flux_fixture(work / "cases" / "auto-0" / "flux-fixture")
    git("-C", str(work), "add", "cases")
    git("-C", str(work), "commit", "--quiet", "--message=cases")
    git("-C", str(work), "push", "--quiet", running.config_repository_url, "main")
    source = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "config", "namespace": UPDATE_NS},
        "spec": {"url": running.config_repository_url, "interval": "10m", "ref": {"branch": "main"}},
    }
    apply(running, [source])
    settle(running, UPDATE_NS, "gitrepositories", lambda item: ready_status(item) == "True")
    apply(running, [automation(k) for k in range(AUTOMATIONS)])
    pushed = wait_for_branches(running.config_repository_url)
    git("-C", str(work), "fetch", "--quiet", running.config_repository_url, "+refs/heads/*:refs/remotes/flux/*")

    disagreements, scenarios = [], 0
    for k in range(AUTOMATIONS):
        path = f"cases/auto-{k}"
        updates = {u.path: u for u in setters.plan_updates(work / path, refs)}
        for case in sorted(p for p in (work / path).rglob("*") if p.is_file()):
            scenarios += 1
            name = case.relative_to(work / path).as_posix()
            ours = updates[name].after if name in updates else case.read_text()
            theirs = git("-C", str(work), "show", f"{pushed[k]}:{path}/{name}", strip=False)
            if ours != theirs:
                disagreements.append(f"{path}/{name}:\n--- ours\n{ours}--- Flux\n{theirs}--- input\n{case.read_text()}")
        template, values = TEMPLATES[k % len(TEMPLATES)]
        changes = [change for update in updates.values() for change in update.changes]
        ours_message = commitmsg.render(template, (UPDATE_NS, f"auto-{k}"), changes, values)
        theirs_message = commit_message(pushed[k], work)
        if not same_message(ours_message, theirs_message):
            disagreements.append(f"auto-{k} message:\n--- ours\n{ours_message!r}\n--- Flux\n{theirs_message!r}")
    agreed = scenarios - sum(1 for d in disagreements if " message:" not in d)
    took = time.monotonic() - started
    with capsys.disabled():
        print(f"\ndifferential: {scenarios} update scenarios in {AUTOMATIONS} commits, {agreed} agreed ({took:.0f} s)")
    assert not disagreements, f"seed {seed}:\n" + "\n".join(disagreements)


def automation(k: int) -> dict:
    template, values = TEMPLATES[k % len(TEMPLATES)]
    commit: dict = {"author": {"name": "fluxcdbot", "email": "fluxcdbot@users.noreply.github.com"}}
    if template:
        commit["messageTemplate"] = template
    if values:
        commit["messageTemplateValues"] = values
    return {
        "apiVersion": "image.toolkit.fluxcd.io/v1",
        "kind": "ImageUpdateAutomation",
        "metadata": {"name": f"auto-{k}", "namespace": UPDATE_NS},
        "spec": {
            "interval": "10m",
            "sourceRef": {"kind": "GitRepository", "name": "config"},
            "git": {"checkout": {"ref": {"branch": "main"}}, "commit": commit, "push": {"branch": f"auto-{k}"}},
            "update": {"path": f"./cases/auto-{k}", "strategy": "Setters"},
        },
    }


def wait_for_branches(url: str) -> list[str]:
    """The commit each automation pushed to its branch, waiting (bounded) until all have pushed."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        heads = dict(reversed(line.split("\t")) for line in git("ls-remote", url).splitlines())
        found = [heads.get(f"refs/heads/auto-{k}") for k in range(AUTOMATIONS)]
        if all(found):
            return found  # type: ignore[return-value]
        assert time.monotonic() < deadline, f"automations pushed only {[f for f in found if f]}"
        time.sleep(1)
