"""Image references as ImagePolicies report them, and the setter values Flux derives from each policy.

Validated as Flux would (go-containerregistry ``name.ParseReference``), so an assignment Flux could not
apply is refused before any file is read.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass

from image_tagger.model.errors import InputError

_ASSIGNMENT_FORM = "NS:NAME=IMAGE:TAG[@sha256:<64 hex>]"
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_POLICY_NAME = re.compile(r"(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# go-containerregistry name.ParseReference (what Flux uses to validate the full-ref setter value).
_REGISTRY = re.compile(r"[A-Za-z0-9.-]+(:[0-9]+)?")
_REPOSITORY = re.compile(r"[a-z0-9_./-]{2,255}")
_TAG = re.compile(r"[A-Za-z0-9_.-]{1,128}")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class ImageRef:
    """An ImagePolicy ``status.latestRef``."""

    name: str
    tag: str
    digest: str = ""

    def __str__(self) -> str:
        return f"{self.name}:{self.tag}" + (f"@{self.digest}" if self.digest else "")


def _ref_problem(ref: ImageRef) -> str | None:
    """Why Flux would reject ``str(ref)`` as an image reference, or None."""
    first, slash, rest = ref.name.partition("/")
    registry_only = "." in ref.name and not slash and ref.name != "rocket.chat"  # ggcr's special cases
    has_registry = registry_only or slash and ("." in first or ":" in first)
    registry, repository = (first, rest) if has_registry else ("", ref.name)
    if registry and not _REGISTRY.fullmatch(registry):
        return f"bad registry {registry!r}"
    if not registry_only and not _REPOSITORY.fullmatch(repository):
        return f"bad repository {repository!r} (lowercase a-z 0-9 _ . / -)"
    if not _TAG.fullmatch(ref.tag):
        return f"bad tag {ref.tag!r}"
    if ref.digest and not DIGEST.fullmatch(ref.digest):
        return f"bad digest {ref.digest!r}"
    return None


def _key_problem(key: str) -> str | None:
    namespace, colon, name = key.partition(":")
    if not colon or not _NAMESPACE.fullmatch(namespace) or not _POLICY_NAME.fullmatch(name):
        return f"bad policy {key!r}"
    return None


def parse_policy_assignment(text: str) -> tuple[str, ImageRef]:
    """``NS:NAME=IMAGE:TAG[@DIGEST]`` -> ``("NS:NAME", ImageRef)``; the tag follows the last ':' after the last '/'."""
    key, equals, image = text.partition("=")
    image, at, digest = image.partition("@")
    colon = image.rfind(":")
    if not equals or colon <= image.rfind("/"):
        problem = "missing '='" if not equals else "missing ':TAG'"
    else:
        ref = ImageRef(image[:colon], image[colon + 1 :], digest)
        problem = _key_problem(key) or ("empty digest" if at and not digest else _ref_problem(ref))
    if problem:
        raise InputError(f"policy assignment {text!r}: {problem}; expected {_ASSIGNMENT_FORM}")
    return key, ref


def setter_values(policies: Mapping[str, ImageRef]) -> dict[str, str]:
    """Every setter name Flux registers per policy (docs/flux-semantics.md §5.2), with its value."""
    values = {}
    for key, ref in policies.items():
        problem = _key_problem(key) or _ref_problem(ref)
        if problem:
            raise InputError(f"policy {key}={ref}: {problem}; expected {_ASSIGNMENT_FORM}")
        values |= {key: str(ref), f"{key}:tag": ref.tag, f"{key}:name": ref.name, f"{key}:digest": ref.digest}
    return values
