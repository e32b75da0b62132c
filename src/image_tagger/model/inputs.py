"""The typed inputs of a publish, as every entry point hands them to the job."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from image_tagger.model.imagename import ImageName
from image_tagger.model.plan import NamingOptions
from image_tagger.model.receivers import Receiver
from image_tagger.model.registry import RegistryAuth
from image_tagger.model.states import Builder, PromoteMode, ProvenanceMode


@dataclass(frozen=True)
class Secret:
    """A build secret, mounted by `RUN --mount=type=secret,id=<id>` and never stored in the image."""

    id: str
    value: str = field(repr=False)


@dataclass(frozen=True)
class BuildOptions:
    """How to build: everything a Dockerfile build needs besides the tags and labels."""

    context: Path
    dockerfile: Path
    build_args: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[Secret, ...] = ()
    platforms: tuple[str, ...] = ()
    target: str = ""
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    pull: bool = False
    no_cache: bool = False
    builder: Builder = Builder.BUILDKIT
    provenance: ProvenanceMode = ProvenanceMode.AUTO


@dataclass(frozen=True)
class ReleaseOptions:
    """What a release may do: replace another commit's release tag, or reuse a branch build's manifest."""

    overwrite: bool = False
    promote: PromoteMode = PromoteMode.AUTO


@dataclass(frozen=True)
class Signing:
    """A cosign key file's text and its password: opened by the job before anything is built (edges/signer.py)."""

    key: str = field(repr=False)
    password: str = field(repr=False)
    source: str = "signing-key"  # where the key came from, for errors: the input, or the CLI's file


@dataclass(frozen=True)
class Keyless:
    """Keyless signing: cosign in `signer_image` signs with a certificate for the job's OIDC identity
    (operations/signing.py hands it the token)."""

    signer_image: str


@dataclass(frozen=True)
class PublishInputs:
    """Everything one publish was asked to do, checked and typed."""

    workspace: Path
    image: ImageName
    naming: NamingOptions
    credentials: RegistryAuth
    build: BuildOptions
    release: ReleaseOptions
    overlay: Path | None
    receivers: tuple[Receiver, ...] = ()  # Flux generic-hmac Receivers (one per cluster) to notify after the push
    signing: Signing | None = None  # sign each pushed image (by digest) before its tag appears
    keyless: Keyless | None = None  # or sign it keyless (never both)
