"""The job: tag plan -> login -> build -> push -> result. Shared by the action and `image-tagger publish`.

Everything that can be refused is checked before the first byte goes to a registry, and the
login happens before the build so that a wrong password costs no build and pushes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import docker

from image_tagger import buildkit, docker_ops
from image_tagger.inputs import BuildOptions, Credentials
from image_tagger.naming import TagPlan


@dataclass(frozen=True)
class Provenance:
    """Where the image comes from: written into its labels, and its build time when the commit's is known."""

    revision: str
    source_url: str | None = None
    commit_time: int | None = None


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
            "image_id": self.image_id,
            "digest": self.digest or "",
            "image_ref": self.image_ref,
            "pushed": self.pushed,
        }


def created_time(provenance: Provenance, now: datetime) -> datetime:
    """The commit time when known, so rebuilding one commit gives the same labels (and, with BuildKit, times)."""
    if provenance.commit_time is not None:
        return datetime.fromtimestamp(provenance.commit_time, UTC)
    return now


def oci_labels(plan: TagPlan, provenance: Provenance, created: datetime) -> dict[str, str]:
    """Standard OCI annotations so a running image names its source, commit and version."""
    labels = {
        "org.opencontainers.image.revision": provenance.revision,
        "org.opencontainers.image.version": plan.version,
        "org.opencontainers.image.created": created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if provenance.source_url:
        labels["org.opencontainers.image.source"] = provenance.source_url
    return labels


def build_image(
    client: docker.DockerClient,
    plan: TagPlan,
    build: BuildOptions,
    provenance: Provenance,
    credentials: Credentials,
    log: docker_ops.Log,
    now: datetime,
) -> str:
    """Build with the chosen builder, all tags at once; returns the image id."""
    created = created_time(provenance, now)
    labels = oci_labels(plan, provenance, created)
    if build.builder == "legacy":
        image_id = docker_ops.build(client, build, plan.refs[0], labels, log)
        docker_ops.tag(client, image_id, plan.image, plan.extra_tags)
        return image_id
    # BuildKit stamps the image config and layer history with SOURCE_DATE_EPOCH; an explicit build-arg wins.
    build_args = {"SOURCE_DATE_EPOCH": str(int(created.timestamp())), **build.build_args}
    return buildkit.build(client, build, plan.image, plan.refs, labels, build_args, credentials, log)


def publish(
    client: docker.DockerClient,
    plan: TagPlan,
    build: BuildOptions,
    provenance: Provenance,
    credentials: Credentials,
    log: docker_ops.Log,
    now: datetime,
) -> PublishResult:
    """Run the job; raises PublishError (or InputError) and leaves the registry untouched on refusal."""
    if plan.push and credentials.username:
        docker_ops.login(client, plan.image, credentials.username, credentials.password)
        log.info(f"Logged in to {plan.image.registry} as {credentials.username}")
    image_id = build_image(client, plan, build, provenance, credentials, log, now)
    if not plan.push:
        log.info(f"Built {', '.join(plan.refs)} (not pushed)")
        return PublishResult(plan, image_id, None, False)
    digests = {name: docker_ops.push(client, plan.image, name, log) for name in plan.tag_names}
    digest = digests[plan.version]
    return PublishResult(plan, image_id, digest, True)
