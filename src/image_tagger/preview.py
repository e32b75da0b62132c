"""Preview: what Flux will select for each ImagePolicy of an overlay, and what its automation commits.

registry tags -> exclusion list -> policy -> setters: the same steps image-reflector-controller and
image-automation-controller take, computed offline from the overlay's own objects.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML, YAMLError
from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent

from image_tagger import kustomize
from image_tagger.errors import InputError
from image_tagger.flux import imageref, policy, setters
from image_tagger.flux.goregex import GoRegexp
from image_tagger.flux.mastersemver import VersionError, parse_version
from image_tagger.imagename import parse_image

IMAGE_API = "image.toolkit.fluxcd.io/"
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
MAX_YAML_DEPTH = 100
_MAJOR_RANGE = re.compile(r"v?([0-9]+)(?:\.[xX*])*")


@dataclass(frozen=True)
class PolicyTarget:
    """An ImagePolicy with the ImageRepository it reads (image and exclusion list)."""

    namespace: str
    name: str
    spec: Mapping[str, Any]
    image: str | None
    exclusions: Sequence[str] | None
    pull_secret: Mapping[str, Any] | None = None  # the ImageRepository's secretRef, when the overlay holds it
    labels: Mapping[str, str] = field(default_factory=dict)  # what an automation's policySelector matches

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def setter(self) -> str:
        return f"{self.namespace}:{self.name}"


@dataclass(frozen=True)
class Automation:
    namespace: str
    name: str
    path: str
    selector: Mapping[str, str] = field(default_factory=dict)  # spec.policySelector.matchLabels

    def applies(self, prediction: Prediction) -> bool:
        """Flux: policies of the automation's namespace that its policySelector (if any) matches."""
        namespace = prediction.policy.split("/", 1)[0]
        return namespace == self.namespace and all(prediction.labels.get(k) == v for k, v in self.selector.items())


@dataclass(frozen=True)
class Prediction:
    policy: str
    image: str | None
    selected: str | None
    error: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "image": self.image, "selected": self.selected, "error": self.error}


def load_objects(path: Path) -> list[dict[str, Any]]:
    """Objects of a rendered file, a kustomize overlay (rendered here) or a folder of plain manifests."""
    if path.is_dir() and any((path / name).is_file() for name in KUSTOMIZATION_FILES):
        try:
            return kustomize.kustomize_build(path)
        except OSError as err:
            raise InputError(f"overlay {path}: cannot run kustomize ({err})") from err
        except subprocess.CalledProcessError as err:
            reason = (err.stderr or "").strip().splitlines() or [f"exit code {err.returncode}"]
            raise InputError(f"overlay {path}: kustomize failed: {reason[-1]}") from err
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    elif path.is_file():
        files = [path]
    else:
        raise InputError(f"overlay {path} does not exist; accepted: a kustomize overlay, a folder or a YAML file")
    objects: list[dict[str, Any]] = []
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
            check_depth(text, f"overlay file {file}")
            docs = list(YAML(typ="safe").load_all(text))
        except (YAMLError, UnicodeDecodeError) as err:
            raise InputError(f"overlay file {file}: not valid YAML ({str(err).splitlines()[0]})") from err
        objects += [d for d in docs if isinstance(d, dict)]
    return objects


def check_depth(text: str, source: str, limit: int = MAX_YAML_DEPTH) -> None:
    """Refuse YAML nested deeper than `limit` (the loader recurses per level): an InputError, not a traceback.

    Reads the event stream, which does not recurse, before anything builds the nested objects."""
    depth = 0
    for event in YAML(typ="safe").parse(text):
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > limit:
                raise InputError(f"{source}: YAML nested deeper than {limit} levels; accepted: Kubernetes manifests")
        elif isinstance(event, CollectionEndEvent):
            depth -= 1


def check_file_depth(path: Path, source: str) -> None:
    """check_depth for a file; an unreadable or malformed file is left for its loader to report."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return
    with contextlib.suppress(YAMLError):
        check_depth(text, source)


def _is(obj: Mapping[str, Any], kind: str) -> bool:
    return obj.get("kind") == kind and str(obj.get("apiVersion", "")).startswith(IMAGE_API)


def _id(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or "default"), str(meta.get("name") or "")


def find_targets(objects: Iterable[Mapping[str, Any]]) -> list[PolicyTarget]:
    """Every ImagePolicy, joined with its ImageRepository (same namespace unless the ref names one).

    An invalid policy (one Flux stalls on) is an InvalidPolicy (InputError) naming it, never "nothing selected".
    """
    objects = list(objects)
    repos = {_id(o): o.get("spec") or {} for o in objects if _is(o, "ImageRepository")}
    secrets = {_id(o): o for o in objects if o.get("kind") == "Secret" and o.get("apiVersion") == "v1"}
    targets = []
    for obj in (o for o in objects if _is(o, "ImagePolicy")):
        namespace, name = _id(obj)
        spec = obj.get("spec") or {}
        ref = spec.get("imageRepositoryRef") or {}
        repo_ns = str(ref.get("namespace") or namespace)
        repo = repos.get((repo_ns, str(ref.get("name") or ""))) or {}
        secret = secrets.get((repo_ns, str((repo.get("secretRef") or {}).get("name") or "")))
        exclusions = repo.get("exclusionList") or None
        try:
            policy.validate(spec, exclusions)
        except policy.InvalidPolicy as err:
            raise policy.InvalidPolicy(f"ImagePolicy {namespace}/{name} is invalid: {err}") from None
        labels = dict((obj.get("metadata") or {}).get("labels") or {})
        targets.append(PolicyTarget(namespace, name, spec, repo.get("image"), exclusions, secret, labels))
    return targets


def find_automations(objects: Iterable[Mapping[str, Any]]) -> list[Automation]:
    found = []
    for obj in (o for o in objects if _is(o, "ImageUpdateAutomation")):
        namespace, name = _id(obj)
        spec = obj.get("spec") or {}
        selector = spec.get("policySelector") or {}
        if selector.get("matchExpressions"):
            raise InputError(f"automation {namespace}/{name}: policySelector.matchExpressions is not supported")
        path = str((spec.get("update") or {}).get("path") or ".")
        found.append(Automation(namespace, name, path, dict(selector.get("matchLabels") or {})))
    return found


def predict_one(target: PolicyTarget, tags: Sequence[str]) -> Prediction:
    """The tag Flux stores as `status.latestRef.tag`, or why there is none."""
    if target.image is None:
        return Prediction(target.key, None, None, "its ImageRepository is not in the overlay", target.labels)
    try:
        selected = policy.select_tag(target.spec, policy.scan_tags(tags, target.exclusions))
    except (policy.InvalidPolicy, policy.PolicyFailure) as err:
        return Prediction(target.key, target.image, None, str(err), target.labels)
    return Prediction(target.key, target.image, selected, labels=target.labels)


def predict(targets: Sequence[PolicyTarget], tags_by_image: Mapping[str, Sequence[str]]) -> list[Prediction]:
    return [predict_one(t, tags_by_image.get(t.image or "", ())) for t in targets]


def same_repository(a: str, b: str) -> bool:
    """`acme/app`, `docker.io/acme/app` and `index.docker.io/acme/app` name one repository."""
    try:
        return parse_image(a).name == parse_image(b).name
    except InputError:
        return a == b


def why_ignored(spec: Mapping[str, Any], tag: str) -> str:
    """A short reason a policy never picks `tag`, in the words a release manager uses."""
    pattern = (spec.get("filterTags") or {}).get("pattern")
    semver = (spec.get("policy") or {}).get("semver")
    if semver:
        try:
            version = parse_version(tag)
        except VersionError:
            return "ignored: not a release version"
        wanted = _MAJOR_RANGE.fullmatch(str(semver.get("range", "")).strip())
        if wanted and version.major != int(wanted.group(1)):
            return "ignored: other major"
        if version.pre:
            return "ignored: prerelease"
    if pattern and not GoRegexp(str(pattern)).matches(tag):
        return "ignored: tag does not match the policy's filter"
    return "ignored: outside the policy's range"


def automation_updates(
    config_repo: Path, automations: Sequence[Automation], predictions: Sequence[Prediction]
) -> list[tuple[Automation, list[setters.FileUpdate]]]:
    """The files each automation would commit (repo-relative paths, as in its commit): its policies' setters."""
    repo = config_repo.resolve()
    results = []
    for auto in automations:
        refs = {
            p.policy.replace("/", ":", 1): imageref.ImageRef(p.image, p.selected)
            for p in predictions
            if p.selected and p.image and auto.applies(p)
        }
        root = (repo / auto.path).resolve()
        if not root.is_relative_to(repo):
            raise InputError(f"automation {auto.namespace}/{auto.name}: update.path {auto.path} leaves the repo")
        updates = setters.plan_updates(root, refs) if root.is_dir() else []
        prefix = root.relative_to(repo)
        results.append((auto, [replace(u, path=(prefix / u.path).as_posix()) for u in updates]))
    return results


def describe(spec: Mapping[str, Any]) -> str:
    """`1.x`, `numerical asc`: the policy in the fewest words."""
    choice = spec.get("policy") or {}
    if "semver" in choice:
        return str((choice.get("semver") or {}).get("range", ""))
    kind = next(iter(choice), "policy")
    return f"{kind} {(choice.get(kind) or {}).get('order', 'asc')}"


def outlook(targets: Sequence[PolicyTarget], tags: Sequence[str], image: str, version: str) -> list[str]:
    """Per policy of `image`: does pushing `version` change what Flux selects? ("1.0.0 → 1.1.0")."""
    lines = []
    before = [t for t in tags if t != version]
    for target in (t for t in targets if t.image and same_repository(t.image, image)):
        label = f"{target.key} ({describe(target.spec)})"
        old, new = predict_one(target, before), predict_one(target, [*before, version])
        if new.error and not old.error:
            lines.append(f"{label}: {new.error}")
        elif new.selected == version:
            lines.append(f"{label}: {old.selected or 'nothing'} → {version}")
        elif predict_one(target, [version]).selected == version:
            lines.append(f"{label}: not the newest, stays on {new.selected}")
        else:
            lines.append(f"{label}: {why_ignored(target.spec, version)}")
    return lines
