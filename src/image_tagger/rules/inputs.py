"""One typed model of what a publish run is asked to do, shared by the action and `image-tagger publish`.

Both edges hand over raw strings under the action's input names (`INPUT_SHA-LENGTH` and `--sha-length`
both arrive as `sha-length`); only this module decides what a value means, so `timestamp: 1764110000`,
`file: docker/Dockerfile` or `pull: TRUE` mean the same thing in a workflow and on a laptop. Paths are
relative to the workspace (the action's GITHUB_WORKSPACE, the CLI's --workspace) and must stay inside it.
Which inputs there are, their defaults and which must be one line are their declaration's (`publishinputs`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path

from image_tagger.model.errors import InputError
from image_tagger.model.imagename import ImageName, parse_image
from image_tagger.model.inputs import BuildOptions, Keyless, PublishInputs, ReleaseOptions, Secret, Signing
from image_tagger.model.inputspec import InputSpec
from image_tagger.model.plan import NamingOptions
from image_tagger.model.registry import RegistryAuth
from image_tagger.model.states import Builder, PromoteMode, ProvenanceMode, PushMode
from image_tagger.rules.naming import parse_choice, parse_major, parse_sha_length
from image_tagger.rules.publishinputs import COSIGN_IMAGE, PUBLISH_INPUTS
from image_tagger.rules.receivers import parse_receivers
from image_tagger.rules.redact import is_one_line

BOOLEANS = ("true", "false")
_ARG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SECRET_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_PLATFORM = re.compile(r"[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?")
_UNIX_SECONDS = re.compile(r"[0-9]{1,10}")  # ASCII digits only: str.isdigit() also admits "²"
_IMAGE_REFERENCE = re.compile(r"[a-z0-9][A-Za-z0-9._/:-]{0,383}(?:@sha256:[0-9a-f]{64})?")  # name[:tag][@digest]
_CACHE_TYPES = ("registry", "local", "inline", "gha")

# Inputs whose meaning needs BuildKit; the legacy builder refuses them instead of ignoring them.
BUILDKIT_ONLY = ("secrets", "platforms", "cache-from", "cache-to")


def parse_seconds(name: str, text: str, default: float, low: float, high: float) -> float:
    """A number of seconds from `low` to `high` (an input or a variable named `name`); empty is `default`."""
    text = text.strip()
    if not text:
        return default
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not low <= seconds <= high:
        raise InputError(f"{name} {text[:20]!r} is not accepted; accepted: seconds from {low:g} to {high:g}")
    return seconds


def parse_bool(name: str, value: str) -> bool:
    """`true`/`false` in any case; anything else is refused, never guessed."""
    return parse_choice(name, value, BOOLEANS) == "true"


def parse_timestamp(value: str) -> tuple[str, int | None]:
    """`push | commit | build`, or fixed Unix seconds (ASCII digits, at most 10: before the year 2287)."""
    text = value.strip().lower() or "push"
    if _UNIX_SECONDS.fullmatch(text):
        return "push", int(text)
    accepted = "Unix seconds (up to 10 digits) | push | commit | build"
    if text.isdigit() or text not in ("push", "commit", "build"):
        raise InputError(f"timestamp {value!r} is not accepted; accepted: {accepted}")
    return text, None


def parse_build_args(text: str) -> dict[str, str]:
    """`KEY=VALUE` per line (blank lines skipped), as docker/build-push-action takes them."""
    args: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.strip().partition("=")
        if not sep or not _ARG_NAME.fullmatch(key):  # the line itself may hold a pasted secret: never echo it
            raise InputError(f"build-args line {number} is not accepted; accepted: one KEY=VALUE per line")
        args[key] = value
    return args


def parse_secrets(text: str) -> tuple[Secret, ...]:
    """`id=value` per line, as docker/build-push-action's `secrets`; the value is never echoed."""
    secrets: dict[str, Secret] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not _SECRET_ID.fullmatch(key) or not value:
            raise InputError(
                f"secrets line {number} is not accepted; accepted: one id=value per line (id: letters, digits, ._-)"
            )
        if key in secrets:
            raise InputError(f"secrets line {number}: id {key!r} is given twice; accepted: each id once")
        secrets[key] = Secret(key, value)
    return tuple(secrets.values())


def parse_list(text: str) -> tuple[str, ...]:
    """Comma- or newline-separated items, as the docker/* actions take lists."""
    return tuple(item.strip() for item in re.split(r"[,\n]", text) if item.strip())


def parse_platforms(text: str) -> tuple[str, ...]:
    platforms = parse_list(text)
    for platform in platforms:
        if not _PLATFORM.fullmatch(platform):
            raise InputError(
                f"platforms item {platform!r} is not accepted; accepted: os/arch[/variant], e.g. linux/arm64"
            )
    if len(set(platforms)) != len(platforms):
        raise InputError(f"platforms {text.strip()!r} names a platform twice; accepted: each platform once")
    return platforms


def parse_cache(name: str, text: str) -> tuple[str, ...]:
    """One cache spec per line (`type=registry,ref=…`): lines, not commas, since a spec holds commas."""
    specs = tuple(line.strip() for line in text.splitlines() if line.strip())
    for spec in specs:
        fields = dict(part.partition("=")[::2] for part in spec.split(","))
        if fields.get("type") not in _CACHE_TYPES:
            raise InputError(
                f"{name} {spec!r} is not accepted; accepted: type=registry,ref=<image>[,mode=max] "
                f"(or type=local|inline|gha), one per line"
            )
    return specs


def inside(workspace: Path, name: str, value: str) -> Path:
    """A path given relative to the workspace, refused when it leaves it (symlinks resolved)."""
    root = workspace.resolve()
    path = (root / value).resolve()
    if path != root and root not in path.parents:
        raise InputError(f"{name} {value!r} is outside the workspace; accepted: a path inside {workspace}")
    return path


def parse_build(given: Mapping[str, str], workspace: Path) -> BuildOptions:
    """The build inputs, as `read` gives them (trimmed, defaulted)."""
    context = inside(workspace, "context", given["context"])
    if not context.is_dir():
        raise InputError(f"context {given['context']!r} is not a directory in the workspace")
    file = given["file"]
    dockerfile = inside(workspace, "file", file) if file else context / "Dockerfile"
    if not dockerfile.is_file():
        raise InputError(f"file {file or 'Dockerfile'!r} is not a file; accepted: a Dockerfile path in the workspace")
    builder = Builder(parse_choice("builder", given["builder"], tuple(Builder)))
    options = BuildOptions(
        context=context,
        dockerfile=dockerfile,
        build_args=parse_build_args(given["build-args"]),
        secrets=parse_secrets(given["secrets"]),
        platforms=parse_platforms(given["platforms"]),
        target=given["target"],
        cache_from=parse_cache("cache-from", given["cache-from"]),
        cache_to=parse_cache("cache-to", given["cache-to"]),
        pull=parse_bool("pull", given["pull"]),
        no_cache=parse_bool("no-cache", given["no-cache"]),
        builder=builder,
        provenance=ProvenanceMode(parse_choice("provenance", given["provenance"], tuple(ProvenanceMode))),
    )
    if builder == Builder.LEGACY:
        used = [name for name in BUILDKIT_ONLY if given[name].strip()]
        if used:
            raise InputError(f"{', '.join(used)} need BuildKit; accepted: builder: buildkit, or leave them empty")
    return options


def parse_repository(image: str, registry: str) -> tuple[ImageName, tuple[str, ...]]:
    """The image name; one that is invalid only for its capitals (`Acme/App` from `${{ github.repository }}`)
    is lower-cased with a notice, as docker/metadata-action does. Registry hosts keep their case."""
    try:
        return parse_image(image, registry), ()
    except InputError:
        first, sep, rest = image.strip().partition("/")
        names_host = bool(sep) and ("." in first or ":" in first or first == "localhost")
        lowered = f"{first}/{rest.lower()}" if names_host else image.strip().lower()
        if lowered == image.strip():
            raise
        try:
            name = parse_image(lowered, registry)
        except InputError:
            raise InputError(f"image {image!r} is not a valid repository name, even lower-cased") from None
        return name, (f"image {image.strip()!r} lower-cased to {lowered!r}: repository names are lower-case",)


def raw_inputs(env: Mapping[str, str]) -> dict[str, str]:
    """The runner's `INPUT_<NAME>` variables (hyphens kept) under the action's input names."""
    return {key.removeprefix("INPUT_").lower(): value for key, value in env.items() if key.startswith("INPUT_")}


def read(specs: tuple[InputSpec, ...], raw: Mapping[str, str]) -> dict[str, str]:
    """Every declared input's text: a one-line input trimmed and refused when it holds a line break or control
    character, an empty one its declared default. A default that is a workflow expression (`${{ github.token }}`)
    is the runner's to fill: here, empty stays empty."""
    given = {}
    for spec in specs:
        text = raw.get(spec.name, "")
        if spec.one_line:
            text = text.strip()
            if not is_one_line(text):
                raise InputError(f"{spec.name} holds a line break or control character; accepted: one line of text")
        given[spec.name] = text or ("" if "${{" in spec.default else spec.default)
    return given


def parse_credentials(username: str, password: str) -> RegistryAuth:
    if password and not username:
        raise InputError("username is empty but a password is set; accepted: both, or neither")
    return RegistryAuth(username, password)


def parse_naming(raw: Mapping[str, str]) -> tuple[ImageName, NamingOptions]:
    """The inputs the naming contract reads (all that `image-tagger tags` needs)."""
    return _naming(read(PUBLISH_INPUTS, raw))


def _naming(given: Mapping[str, str]) -> tuple[ImageName, NamingOptions]:
    image, notes = parse_repository(given["image"], given["registry"])
    timestamp, fixed = parse_timestamp(given["timestamp"])
    naming = NamingOptions(
        tag_prefix=given["tag-prefix"],
        major_version=parse_major(given["major-version"]),
        sha_length=parse_sha_length(given["sha-length"]),
        timestamp=timestamp,
        timestamp_value=fixed,
        floating_tags=parse_bool("floating-tags", given["floating-tags"]),
        push=PushMode(parse_choice("push", given["push"], tuple(PushMode))),
        notes=notes,
    )
    return image, naming


def parse(raw: Mapping[str, str], workspace: Path) -> PublishInputs:
    """All inputs at once, so a bad one is refused before anything is built or pushed."""
    given = read(PUBLISH_INPUTS, raw)
    image, naming = _naming(given)
    return PublishInputs(
        workspace=workspace,
        image=image,
        naming=naming,
        credentials=parse_credentials(given["username"], given["password"]),
        build=parse_build(given, workspace),
        release=ReleaseOptions(
            overwrite=parse_bool("overwrite-releases", given["overwrite-releases"]),
            promote=PromoteMode(parse_choice("promote", given["promote"], tuple(PromoteMode))),
        ),
        overlay=inside(workspace, "overlay", given["overlay"]) if given["overlay"] else None,
        receivers=parse_receivers(given["flux-receiver-url"], given["flux-receiver-secret"]),
        signing=parse_signing(given["signing-key"], given["signing-password"]),
        keyless=parse_keyless(given),
    )


def parse_signing(key: str, password: str) -> Signing | None:
    """The signing key's text and password as given; opening it is the job's first step (it needs cryptography)."""
    if not key.strip():
        if password:
            raise InputError("signing-password is set but signing-key is empty; accepted: both, or neither")
        return None
    return Signing(key, password)


def parse_keyless(given: Mapping[str, str]) -> Keyless | None:
    """Keyless signing, which excludes a signing key: one signer per image, so a verifier knows what to expect."""
    if not parse_bool("keyless-signing", given["keyless-signing"]):
        return None
    if given["signing-key"].strip():
        raise InputError("signing-key and keyless-signing: true are both set; accepted: one of them")
    image = given["signer-image"] or COSIGN_IMAGE
    if not _IMAGE_REFERENCE.fullmatch(image):
        raise InputError(
            f"signer-image {image[:200]!r} is not an image reference; accepted: NAME[:TAG][@sha256:HEX], e.g. "
            "ghcr.io/sigstore/cosign/cosign:v3.1.3"
        )
    return Keyless(image)
