"""What Flux will do with a set of objects, computed offline: the one home of the prediction.

registry tags -> exclusion list -> ImagePolicy -> setters -> commit message: the steps
image-reflector-controller and image-automation-controller take (docs/flux-semantics.md §3-§5), from
the objects an overlay renders. `preview`, the action's overlay summary, the job report and the demo
all ask this module; none of them joins policies, repositories and automations on its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

from image_tagger.fluxrules import commitmsg, policy, setters
from image_tagger.fluxrules.imageref import ImageRef
from image_tagger.model.errors import InputError
from image_tagger.model.imagename import parse_image

IMAGE_API = "image.toolkit.fluxcd.io/"


@dataclass(frozen=True)
class ImageRepo:
    """An ImageRepository: the image Flux scans, its exclusion list as written ([] leaves Flux's default)."""

    namespace: str
    name: str
    image: str
    exclusions: list[str]
    pull_secret: Mapping[str, Any] | None = None  # the Secret its secretRef names, when the objects hold it

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @cached_property
    def scan(self) -> policy.Exclusions:
        """The exclusion list compiled once, for every policy that reads this repository (InvalidPolicy if not)."""
        return policy.parse_exclusions(self.exclusions)


@dataclass(frozen=True)
class PolicyTarget:
    """An ImagePolicy, parsed, with the ImageRepository it reads (image and compiled exclusion list)."""

    namespace: str
    name: str
    spec: policy.PolicySpec
    image: str | None
    exclusions: policy.Exclusions  # Flux's default when the objects do not hold its ImageRepository
    pull_secret: Mapping[str, Any] | None = None  # the ImageRepository's secretRef, when the objects hold it
    labels: Mapping[str, str] = field(default_factory=dict)  # what an automation's policySelector matches
    repository: str = ""  # its ImageRepository's namespace/name, when the objects hold it

    @property
    def key(self) -> str:
        """`namespace/name`, as Flux names the object."""
        return f"{self.namespace}/{self.name}"

    @property
    def setter(self) -> str:
        """`namespace:name`, as setter markers name the policy."""
        return f"{self.namespace}:{self.name}"


@dataclass(frozen=True)
class Prediction:
    """The tag (and digest, for a policy that reflects digests) Flux will store as the policy's `status.latestRef`,
    or why there is none."""

    target: PolicyTarget
    selected: str | None
    error: str | None = None
    digest: str = ""

    @property
    def policy(self) -> str:
        return self.target.key

    @property
    def image(self) -> str | None:
        return self.target.image

    @property
    def ref(self) -> ImageRef | None:
        """`status.latestRef`, whose string form (`name:tag[@digest]`) a full-reference marker receives."""
        return ImageRef(self.image, self.selected, self.digest) if self.image and self.selected else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "image": self.image,
            "selected": self.selected,
            "digest": self.digest,
            "error": self.error,
        }


@dataclass(frozen=True)
class Automation:
    """An ImageUpdateAutomation: where it writes, which policies it follows, how it words its commits."""

    namespace: str
    name: str
    path: str
    selector: Mapping[str, str] = field(default_factory=dict)  # spec.policySelector.matchLabels
    message_template: str = ""
    template_values: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def follows(self, target: PolicyTarget) -> bool:
        """Flux: policies of the automation's namespace that its policySelector (if any) matches."""
        return target.namespace == self.namespace and all(target.labels.get(k) == v for k, v in self.selector.items())


@dataclass(frozen=True)
class Commit:
    """What one automation would commit: the files (repo-relative paths) and the message."""

    automation: Automation
    updates: list[setters.FileUpdate]
    message: str


class Scanned(Protocol):
    """What a tag source needs: the image, and the pull secret Flux would use for it."""

    @property
    def image(self) -> str | None: ...
    @property
    def pull_secret(self) -> Mapping[str, Any] | None: ...


class TagSource(Protocol):
    """The registry as Flux reads it: an ImageRepository's tags, and (digest reflection) the digest of one tag,
    None when it has no manifest."""

    def tags(self, target: Scanned) -> Sequence[str]: ...
    def digest(self, target: Scanned, tag: str) -> str | None: ...


@dataclass(frozen=True)
class KnownTags:
    """Tags given by image name (tests, the action's own tag list), and digests by `image:tag` where known."""

    by_image: Mapping[str, Sequence[str]]
    by_ref: Mapping[str, str] = field(default_factory=dict)

    def tags(self, target: Scanned) -> Sequence[str]:
        return next((t for image, t in self.by_image.items() if same_repository(image, target.image or "")), ())

    def digest(self, target: Scanned, tag: str) -> str | None:
        return self.by_ref.get(f"{target.image}:{tag}")


def _is(obj: Mapping[str, Any], kind: str) -> bool:
    return obj.get("kind") == kind and str(obj.get("apiVersion", "")).startswith(IMAGE_API)


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"a string ({value[:40]!r})"
    if isinstance(value, bool):
        return f"a boolean ({value})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    return f"a {type(value).__name__}"  # a YAML timestamp, for one


def _typed(obj: Mapping[str, Any], path: str, kind: type, what: str) -> Any:
    """The field at dotted `path`, None when absent or null, else of the CRD's type.

    The API server refuses an object whose field has another type (a string where the CRD wants a list),
    so Flux never acts on it; reading it anyway (a string as no exclusions at all) would predict what
    never happens: an InputError names the object and the field instead.
    """
    value: Any = obj
    parts = path.split(".")
    for depth, key in enumerate(parts):
        value = value.get(key)
        if value is None:
            return None
        want = kind if depth == len(parts) - 1 else dict
        if not isinstance(value, want):
            field_name = ".".join(parts[: depth + 1])
            accepted = {dict: "an object", list: "a list", str: "a string"}[want]
            raise InputError(f"{what}: {field_name} is {_describe(value)}; the Flux CRD accepts {accepted}")
    return value


def _strings(obj: Mapping[str, Any], path: str, what: str) -> list[str]:
    """A list of strings (absent: empty), as the CRD types `exclusionList`."""
    items = _typed(obj, path, list, what) or []
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise InputError(f"{what}: {path}[{index}] is {_describe(item)}; the Flux CRD accepts a string")
    return items


def _string_map(obj: Mapping[str, Any], path: str, what: str) -> dict[str, str]:
    """An object of strings (absent: empty), as labels and `messageTemplateValues` are typed."""
    entries = _typed(obj, path, dict, what) or {}
    for key, value in entries.items():
        if not isinstance(value, str):
            raise InputError(f"{what}: {path}.{key} is {_describe(value)}; the Flux CRD accepts a string")
    return {str(key): value for key, value in entries.items()}


def _id(obj: Mapping[str, Any], kind: str) -> tuple[str, str]:
    what = f"{kind} object"
    return _typed(obj, "metadata.namespace", str, what) or "default", _typed(obj, "metadata.name", str, what) or ""


def read_repository(
    obj: Mapping[str, Any], secrets: Mapping[tuple[str, str], Mapping[str, Any]] | None = None
) -> ImageRepo:
    """One ImageRepository, its pull Secret found in `secrets`; each field of the type its CRD gives it."""
    namespace, name = _id(obj, "ImageRepository")
    what = f"ImageRepository {namespace}/{name}"
    secret = (secrets or {}).get((namespace, _typed(obj, "spec.secretRef.name", str, what) or ""))
    image = _typed(obj, "spec.image", str, what) or ""
    return ImageRepo(namespace, name, image, _strings(obj, "spec.exclusionList", what), secret)


def find_repositories(objects: Iterable[Mapping[str, Any]]) -> list[ImageRepo]:
    objects = list(objects)
    secrets = {_id(o, "Secret"): o for o in objects if o.get("kind") == "Secret" and o.get("apiVersion") == "v1"}
    return [read_repository(obj, secrets) for obj in objects if _is(obj, "ImageRepository")]


def find_targets(objects: Iterable[Mapping[str, Any]]) -> list[PolicyTarget]:
    """Every ImagePolicy, parsed once and joined with its ImageRepository (same namespace unless the ref names one).

    An invalid policy (one Flux stalls on) is an InvalidPolicy (InputError) naming it, never "nothing selected".
    """
    objects = list(objects)
    repos = {(r.namespace, r.name): r for r in find_repositories(objects)}
    targets = []
    for obj in (o for o in objects if _is(o, "ImagePolicy")):
        namespace, name = _id(obj, "ImagePolicy")
        what = f"ImagePolicy {namespace}/{name}"
        ref_namespace = _typed(obj, "spec.imageRepositoryRef.namespace", str, what) or namespace
        repo = repos.get((ref_namespace, _typed(obj, "spec.imageRepositoryRef.name", str, what) or ""))
        try:
            spec = policy.parse_policy(_typed(obj, "spec", dict, what) or {})
            exclusions = repo.scan if repo else policy.parse_exclusions(None)
        except policy.InvalidPolicy as err:
            raise policy.InvalidPolicy(f"{what} is invalid: {err}") from None
        labels = _string_map(obj, "metadata.labels", what)
        image = (repo.image or None) if repo else None
        secret = repo.pull_secret if repo else None
        targets.append(PolicyTarget(namespace, name, spec, image, exclusions, secret, labels, repo.key if repo else ""))
    return targets


def find_automations(objects: Iterable[Mapping[str, Any]]) -> list[Automation]:
    found = []
    for obj in (o for o in objects if _is(o, "ImageUpdateAutomation")):
        namespace, name = _id(obj, "ImageUpdateAutomation")
        what = f"automation {namespace}/{name}"
        if _typed(obj, "spec.policySelector.matchExpressions", list, what):
            raise InputError(f"{what}: policySelector.matchExpressions is not supported")
        found.append(
            Automation(
                namespace,
                name,
                _typed(obj, "spec.update.path", str, what) or ".",
                _string_map(obj, "spec.policySelector.matchLabels", what),
                _typed(obj, "spec.git.commit.messageTemplate", str, what) or "",
                _string_map(obj, "spec.git.commit.messageTemplateValues", what),
            )
        )
    return found


def predict_one(target: PolicyTarget, tags: Sequence[str]) -> Prediction:
    if target.image is None:
        return Prediction(target, None, "its ImageRepository is not in the overlay")
    try:
        selected = target.spec.select(target.exclusions.scan(tags))
    except policy.PolicyFailure as err:
        return Prediction(target, None, str(err))
    return Prediction(target, selected)


def reflect(prediction: Prediction, source: TagSource, recorded: Mapping[str, str] | None = None) -> Prediction:
    """The digest Flux records with the selected tag (`digestReflectionPolicy`), read from `source` as Flux reads it.

    Offline there is no previous `status.latestRef`; `recorded` (setter name -> digest) stands in for it: the digest
    the manifests already hold for the selected name and tag (`recorded_digests`), which IfNotPresent keeps.
    """
    target, ref = prediction.target, prediction.ref
    if ref is None or target.spec.reflection == policy.NEVER:
        return prediction
    known = (recorded or {}).get(target.setter)
    previous = replace(ref, digest=known) if known else None
    try:
        latest = policy.latest_ref(target.spec.reflection, ref, previous, lambda: source.digest(target, ref.tag))
    except policy.PolicyFailure as err:
        return Prediction(target, None, str(err))
    return replace(prediction, digest=latest.digest)


def select(targets: Sequence[PolicyTarget], source: TagSource) -> list[Prediction]:
    """The tag each policy selects, digests not yet looked up (see `reflect`)."""
    return [predict_one(target, source.tags(target)) for target in targets]


def predict(
    targets: Sequence[PolicyTarget], source: TagSource, recorded: Mapping[str, str] | None = None
) -> list[Prediction]:
    """What each policy's `status.latestRef` will be: the selected tag, and its digest where the policy reflects it."""
    return [reflect(prediction, source, recorded) for prediction in select(targets, source)]


def _update_root(config_repo: Path, auto: Automation) -> Path:
    """The automation's update path inside the checkout; InputError where Flux's automation fails on it."""
    repo = config_repo.resolve()
    root = (repo / auto.path).resolve()
    if not root.is_relative_to(repo):
        raise InputError(f"automation {auto.key}: update.path {auto.path} leaves the repository")
    if not root.is_dir():  # Flux's automation fails on it: no commit to predict
        raise InputError(f"automation {auto.key}: update.path {auto.path} is not a folder of {config_repo}")
    return root


def _followed_refs(auto: Automation, predictions: Sequence[Prediction]) -> dict[str, ImageRef]:
    return {p.target.setter: p.ref for p in predictions if p.ref is not None and auto.follows(p.target)}


def recorded_digests(
    config_repo: Path, automations: Sequence[Automation], predictions: Sequence[Prediction]
) -> dict[str, str]:
    """Per setter name, the digest the automations' manifests already hold for the selected name and tag."""
    found: dict[str, str] = {}
    for auto in automations:
        found |= setters.recorded_digests(_update_root(config_repo, auto), _followed_refs(auto, predictions))
    return found


def plan_commits(
    config_repo: Path, automations: Sequence[Automation], predictions: Sequence[Prediction]
) -> list[Commit]:
    """Per automation, the files its policies' setters change under `update.path`, and its commit message."""
    repo = config_repo.resolve()
    commits = []
    for auto in automations:
        root = _update_root(config_repo, auto)
        updates = setters.plan_updates(root, _followed_refs(auto, predictions))
        prefix = root.relative_to(repo)
        updates = [replace(u, path=(prefix / u.path).as_posix()) for u in updates]
        changes = [change for update in updates for change in update.changes]
        message = commitmsg.render(auto.message_template, (auto.namespace, auto.name), changes, auto.template_values)
        commits.append(Commit(auto, updates, message))
    return commits


def same_repository(a: str, b: str) -> bool:
    """`acme/app`, `docker.io/acme/app` and `index.docker.io/acme/app` name one repository."""
    try:
        return parse_image(a).name == parse_image(b).name
    except InputError:
        return a == b


def outlook(targets: Sequence[PolicyTarget], tags: Sequence[str], image: str, version: str) -> list[str]:
    """Per policy of `image`: does pushing `version` change what Flux selects? ("1.0.0 → 1.1.0")."""
    lines = []
    before = [t for t in tags if t != version]
    for target in (t for t in targets if t.image and same_repository(t.image, image)):
        label = f"{target.key} ({target.spec.describe()})"
        old, new = predict_one(target, before), predict_one(target, [*before, version])
        if new.error and not old.error:
            lines.append(f"{label}: {new.error}")
        elif new.selected == version:
            lines.append(f"{label}: {old.selected or 'nothing'} → {version}")
        elif predict_one(target, [version]).selected == version:
            lines.append(f"{label}: not the newest, stays on {new.selected}")
        else:
            lines.append(f"{label}: {target.spec.why_ignored(version)}")
    return lines
