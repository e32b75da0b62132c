"""The job: tag plan -> login -> build -> push -> result. Shared by the action and `image-tagger publish`.

Everything that can be refused is checked before the first byte goes to a registry, and the
login happens before the build so that a wrong password costs no build and pushes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import docker

from image_tagger import docker_ops
from image_tagger.errors import InputError
from image_tagger.naming import TagPlan

_ARG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


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


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if self.password and not self.username:
            raise InputError("username is empty but a password is set; accepted: both, or neither")


@dataclass(frozen=True)
class BuildSpec:
    context: Path
    dockerfile: Path
    build_args: Mapping[str, str]
    source_url: str | None
    revision: str


@dataclass(frozen=True)
class PublishResult:
    plan: TagPlan
    image_id: str
    digest: str | None
    pushed: bool

    @property
    def image_ref(self) -> str:
        primary = self.plan.image.ref(self.plan.version)
        return f"{primary}@{self.digest}" if self.digest else primary

    def as_dict(self) -> dict[str, object]:
        return {
            **self.plan.as_dict(),
            "digest": self.digest or "",
            "image_ref": self.image_ref,
            "pushed": self.pushed,
        }


def oci_labels(plan: TagPlan, build: BuildSpec, created: datetime) -> dict[str, str]:
    """Standard OCI annotations so a running image names its source, commit and version."""
    labels = {
        "org.opencontainers.image.revision": build.revision,
        "org.opencontainers.image.version": plan.version,
        "org.opencontainers.image.created": created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if build.source_url:
        labels["org.opencontainers.image.source"] = build.source_url
    return labels


def publish(
    client: docker.DockerClient,
    plan: TagPlan,
    build: BuildSpec,
    credentials: Credentials,
    log: docker_ops.Log,
    now: datetime,
) -> PublishResult:
    """Run the job; raises PublishError (or InputError) and leaves the registry untouched on refusal."""
    if plan.push and credentials.username:
        docker_ops.login(client, plan.image, credentials.username, credentials.password)
        log.info(f"Logged in to {plan.image.registry} as {credentials.username}")
    labels = oci_labels(plan, build, now)
    image_id = docker_ops.build(client, build.context, build.dockerfile, plan.refs[0], build.build_args, labels, log)
    docker_ops.tag(client, image_id, plan.image, plan.extra_tags)
    if not plan.push:
        log.info(f"Built {', '.join(plan.refs)} (not pushed)")
        return PublishResult(plan, image_id, None, False)
    digests = {name: docker_ops.push(client, plan.image, name, log) for name in plan.tag_names}
    digest = digests[plan.version]
    return PublishResult(plan, image_id, digest, True)
