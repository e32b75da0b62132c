"""The job: tag plan -> login -> release checks -> build -> push -> verify -> result.

Shared by the action and `image-tagger publish`. Everything that can be refused is checked before the
first byte goes to a registry: the login before the build (a wrong password costs no build), a release
tag that another commit holds before anything is built. Each pushed tag is then read back from the
registry and must be the image this run built, so a concurrent run's image is never reported as ours.
The result says per tag what happened, also when a later tag fails.

One winner per release tag. Registries have no compare-and-swap on tags: a manifest PUT always
succeeds, and the last one wins. So a release tag is guarded (ReleaseGuard) in four steps: (a) checked
again right before its push (another commit there: refused, nothing pushed under it); (b) pushed and
read back; (c) after RELEASE_SETTLE_SECONDS, checked to still name this commit, before any floating tag
moves; (d) checked once more after the floating tags moved. A run reports success only when the tag
names its commit at its end; the other run fails naming the commit that holds the tag.

Why the settle interval closes the common case: two runs race only when each passed (a) before the
other's PUT landed, i.e. the later PUT lands at most one push duration (mostly layer upload) after the
earlier. The earlier run looks again at (c), `settle` seconds after its own PUT: if the later PUT came
within that time, the earlier run sees it and fails, and the later run, whose PUT is last, finds its
own commit at (c) and (d) and wins. What stays possible: a rival that passed (a) before our PUT and
whose PUT lands after our (d), because its push (layer upload, a slow or stalled registry, a retried
push) outlasted our settle interval plus our floating-tag pushes. Then both report success, each
truthfully at its own end, and the tag names the later one; a rival whose PUT lands between our (c)
and (d) makes us fail after our floating tags moved (the result says so; the winner moves them again).
Raise $IMAGE_TAGGER_RELEASE_SETTLE beyond your push time, and serialise releases per ref (the example
workflow's `concurrency` group), to close these.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import docker

from image_tagger.edges import buildkit, docker_ops
from image_tagger.edges.registry.session import Manifest, RegistrySession
from image_tagger.model.errors import PublishError
from image_tagger.model.inputs import BuildOptions, ReleaseOptions
from image_tagger.model.log import Log
from image_tagger.model.plan import TagPlan
from image_tagger.model.registry import RegistryAuth
from image_tagger.model.result import Provenance, PublishResult, PushFailed
from image_tagger.rules import releases
from image_tagger.rules.inputs import parse_seconds

PUSH_ATTEMPTS = 4
DEFAULT_RELEASE = ReleaseOptions()
PUSH_BACKOFF = 2.0  # seconds, doubled per attempt
# Between pushing a release tag and checking that it still names this commit, before floating tags move:
# longer than a rival's manifest PUT usually lags ours (see the module docstring).
RELEASE_SETTLE_SECONDS = 10.0
MAX_SETTLE_SECONDS = 600.0
SETTLE_ENV = "IMAGE_TAGGER_RELEASE_SETTLE"
# How the daemon words registry trouble worth another try (its push stream carries text only, so a
# registry's Retry-After does not reach us: the backoff stands in for it).
_TRANSIENT = re.compile(
    r"\b(?:50[0-4]|429)\b|toomanyrequests|unavailable|timeout|timed out|\bEOF\b|connection reset|"
    r"connection refused|broken pipe|did not answer in time",
    re.IGNORECASE,
)


def created_time(provenance: Provenance, now: datetime) -> datetime:
    """The commit time when known, so rebuilding one commit gives the same labels (and, with BuildKit, times)."""
    if provenance.commit_time is not None:
        return datetime.fromtimestamp(provenance.commit_time, UTC)
    return now


def oci_labels(plan: TagPlan, provenance: Provenance, created: datetime) -> dict[str, str]:
    """Standard OCI annotations so a running image names its source, commit and version."""
    labels = {
        releases.REVISION: provenance.revision,
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
    credentials: RegistryAuth,
    log: Log,
    now: datetime,
    build_ref: str,
) -> str:
    """Build with the chosen builder, as every tag of the plan and `build_ref`; returns the image id.

    `build_ref` is a local tag of this run alone: pushes retag from it, so another run that moved a
    shared tag meanwhile cannot hand us its image.
    """
    created = created_time(provenance, now)
    labels = oci_labels(plan, provenance, created)
    if build.builder == "legacy":
        image_id = docker_ops.build(client, build, build_ref, labels, log)
        docker_ops.tag(client, build_ref, plan.image, plan.tag_names)
        return image_id
    # BuildKit stamps the image config and layer history with SOURCE_DATE_EPOCH; an explicit build-arg wins.
    build_args = {"SOURCE_DATE_EPOCH": str(int(created.timestamp())), **build.build_args}
    refs = [*plan.refs, build_ref]
    return buildkit.build(client, build, plan.image, refs, labels, build_args, credentials, log)


def existing_release(session: RegistrySession, tag: str) -> tuple[releases.Existing, Manifest] | None:
    manifest = session.manifest(tag)
    if manifest is None:
        return None
    revision = session.config_labels(manifest).get(releases.REVISION)
    return releases.Existing(tag, manifest.digest, revision), manifest


def find_branch_build(session: RegistrySession, sha: str) -> tuple[str, Manifest] | None:
    """The newest branch build of this very commit (its revision label says so), if the registry has one."""
    for tag in releases.branch_build_candidates(session.tags(missing_ok=True), sha):
        found = existing_release(session, tag)
        if found and (found[0].revision or "").lower() == sha.lower():
            return tag, found[1]
    return None


def copy_tags(
    registry_session: Callable[[], RegistrySession],
    plan: TagPlan,
    manifest: Manifest,
    state: str,
    log: Log,
    guard: ReleaseGuard,
    **extra: str,
) -> PublishResult:
    """Point every tag of the plan at `manifest` by a registry-side copy: no build, the same bytes."""

    def copy(tag: str) -> str:
        with registry_session() as session:
            session.put_manifest(tag, manifest)
        log.info(f"{plan.image.ref(tag)} -> {manifest.digest}")
        return manifest.digest

    done = {plan.version: state} if state == "already-published" else {}
    return push_tags(PublishResult(plan, "", manifest.digest, done, **extra), copy, guard, state)


def push_tags(
    result: PublishResult, push_one: Callable[[str], str], guard: ReleaseGuard | None, primary_state: str = "pushed"
) -> PublishResult:
    """Push the plan's tags not yet in `result`, the primary first; a release tag is guarded (ReleaseGuard).

    Raises PushFailed whose result says, per tag, what this run left in the registry.
    """
    plan = result.plan
    moved_after_settle = False
    for tag in plan.tag_names:
        if tag in result.states:
            continue
        guarded = guard if tag == plan.version else None
        try:
            digest = guarded.push(push_one) if guarded is not None else push_one(tag)
        except PublishError as err:
            raise _push_failed(result, tag, err) from err
        state = primary_state if tag == plan.version else "pushed"
        result = replace(result, states={**result.states, tag: state}, digest=result.digest or digest)
        moved_after_settle = moved_after_settle or guarded is None
    if guard is not None and moved_after_settle:
        try:
            guard.still_holds("after the floating tags moved")
        except PublishError as err:
            raise _push_failed(result, plan.version, err) from err
    return result


def _push_failed(result: PublishResult, tag: str, err: Exception) -> PushFailed:
    failed = replace(result, states={**result.states, tag: "failed"}, errors={tag: str(err)})
    return PushFailed(failure_message(failed), failed)


def failure_message(result: PublishResult) -> str:
    """One error naming what failed and, exactly, what is in the registry and what is not."""
    failed = next(iter(result.errors.items()))
    pushed = ", ".join(result.tags_in("pushed", "promoted", "already-published")) or "none"
    missing = ", ".join(
        ref
        for ref in (result.plan.image.ref(t) for t in result.plan.tag_names)
        if ref not in result.tags_in("pushed", "promoted", "already-published")
    )
    return f"{result.plan.image.ref(failed[0])}: {failed[1]} (in the registry: {pushed}; not pushed: {missing})"


def is_transient(err: Exception) -> bool:
    return bool(_TRANSIENT.search(str(err)))


def verify(session: RegistrySession, plan: TagPlan, tag: str, image_id: str) -> str:
    """The registry's manifest for `tag` must be this run's image (its config, or the index itself)."""
    manifest = session.manifest(tag)
    if manifest is None:
        raise PublishError(f"{plan.image.ref(tag)} is missing from the registry after the push")
    if manifest.digest == image_id or (manifest.json().get("config") or {}).get("digest") == image_id:
        return manifest.digest
    raise PublishError(
        f"{plan.image.ref(tag)} in the registry is {manifest.digest}, not the image this run built ({image_id}); "
        "another run pushed the same tag at the same time"
    )


def push_verified(
    client: docker.DockerClient,
    registry_session: Callable[[], RegistrySession],
    plan: TagPlan,
    tag: str,
    built: tuple[str, str],
    log: Log,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Push one tag with retries on transient registry trouble, then read it back; returns its digest.

    `built` is (this run's local build tag, its image id). The read-back follows a failed push too: a push we
    gave up on (the daemon silent past the SDK's timeout) may have landed, and then the tag is ours, pushed.
    """
    build_ref, image_id = built
    for attempt in range(1, PUSH_ATTEMPTS + 1):
        pushed: PublishError | None = None
        try:
            docker_ops.tag(client, build_ref, plan.image, (tag,))  # from our own tag: one another run moved is reset
            docker_ops.push(client, plan.image, tag, log)
        except PublishError as err:
            pushed = err
        try:
            with registry_session() as session:  # a fresh deadline: the push itself may have taken long
                digest = verify(session, plan, tag, image_id)
        except PublishError as err:
            if pushed is None:
                error = err
            elif isinstance(pushed, docker_ops.PushStalled):  # say what the registry held when we last looked
                error = PublishError(f"{pushed}; read back: {err}")
            else:
                error = pushed
        else:
            if pushed:
                log.info(f"{plan.image.ref(tag)}: the push reported {pushed}, but the registry holds this run's image")
            return digest
        if attempt == PUSH_ATTEMPTS or not is_transient(error):
            raise error
        wait = PUSH_BACKOFF * 2 ** (attempt - 1)
        log.info(f"push of {plan.image.ref(tag)} failed ({error}); attempt {attempt + 1} in {wait:.0f}s")
        sleep(wait)
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class ReleaseGuard:
    """One winner per release tag, as far as a registry without compare-and-swap on tags allows.

    `push` wraps the push of the release tag: (a) it checks the tag again, so a commit that took it since
    the first check is refused before anything of ours lands under it; (b) the push reads the tag back;
    (c) it waits `settle` seconds and checks that the tag still names this commit before any floating tag
    moves, so a rival whose push landed just after ours is seen, and we fail, not it. (d) push_tags checks
    `still_holds` once more at the end. The limit is in the module docstring.
    """

    registry_session: Callable[[], RegistrySession]
    plan: TagPlan
    revision: str
    overwrite: bool
    settle: float
    log: Log
    sleep: Callable[[float], None] = time.sleep

    def _holder(self) -> releases.Existing | None:
        with self.registry_session() as session:
            found = existing_release(session, self.plan.version)
        return found[0] if found else None

    def push(self, push_one: Callable[[str], str]) -> str:
        """Push the release tag with push_one (which reads it back), guarded; returns its digest."""
        releases.release_verdict(self._holder(), self.revision, self.overwrite)  # (a): nothing pushed if taken
        try:
            digest = push_one(self.plan.version)  # (b)
        except PublishError as err:
            raise self._explained(err) from err
        if self.settle:
            self.log.info(
                f"{self.plan.image.ref(self.plan.version)}: checking again in {self.settle:g}s that no other commit's "
                f"release replaced it ({SETTLE_ENV})"
            )
        self.sleep(self.settle)
        self.still_holds(f"within {self.settle:g}s of our push, before the floating tags moved")  # (c)
        return digest

    def still_holds(self, when: str) -> None:
        """The release tag must still name this commit (a rerun of the same commit is the same release)."""
        releases.check_holder(self.plan.version, self._holder(), self.revision, when)

    def _explained(self, err: PublishError) -> PublishError:
        """A failed push of the release tag, named by the commit that holds the tag now when it is another's."""
        try:
            self.still_holds("while this run pushed it")
        except releases.ReleaseLost as lost:
            return lost
        except PublishError:
            pass  # the registry cannot say now: the push's own error stands
        return err


def release_settle(env: Mapping[str, str]) -> float:
    """The settle interval: RELEASE_SETTLE_SECONDS, or $IMAGE_TAGGER_RELEASE_SETTLE for slow uploads (and tests)."""
    return parse_seconds(SETTLE_ENV, env.get(SETTLE_ENV, ""), RELEASE_SETTLE_SECONDS, 0, MAX_SETTLE_SECONDS)


def release_without_build(
    registry_session: Callable[[], RegistrySession],
    plan: TagPlan,
    provenance: Provenance,
    release: ReleaseOptions,
    log: Log,
    guard: ReleaseGuard,
) -> PublishResult | None:
    """An already-published or promoted release; None when it must be built. Refuses another commit's tag."""
    with registry_session() as session:
        found = existing_release(session, plan.version)
        verdict = releases.release_verdict(found[0] if found else None, provenance.revision, release.overwrite)
        published = verdict == "already-published" and found is not None
        promote = release.promote == "auto" and not published
        source = find_branch_build(session, provenance.revision) if promote else None
    if published and found:
        log.info(f"{plan.image.ref(plan.version)} is already published from this commit ({found[1].digest})")
        return copy_tags(registry_session, plan, found[1], "already-published", log, guard)
    if source:
        log.info(f"{plan.image.ref(plan.version)}: promoted from {source[0]} ({source[1].digest}), no build")
        return copy_tags(registry_session, plan, source[1], "promoted", log, guard, promoted_from=source[0])
    return None


def publish(
    client: docker.DockerClient,
    plan: TagPlan,
    build: BuildOptions,
    provenance: Provenance,
    credentials: RegistryAuth,
    log: Log,
    now: datetime,
    release: ReleaseOptions = DEFAULT_RELEASE,
) -> PublishResult:
    """Run the job; raises PublishError (or InputError) and leaves the registry untouched on refusal."""

    def registry_session() -> RegistrySession:
        """One session per phase: each has its own deadline, and a build in between may take long."""
        return RegistrySession(plan.image, credentials)

    settle = release_settle(os.environ)
    guard = None
    if plan.push and plan.kind == "release":
        guard = ReleaseGuard(registry_session, plan, provenance.revision, release.overwrite, settle, log)
    if plan.push and credentials.username:
        docker_ops.login(client, plan.image, credentials.username, credentials.password)
        log.info(f"Logged in to {plan.image.registry} as {credentials.username}")
    if guard is not None:
        done = release_without_build(registry_session, plan, provenance, release, log, guard)
        if done is not None:
            return done
    build_ref = plan.image.ref(f"image-tagger-build-{secrets.token_hex(6)}")
    image_id = build_image(client, plan, build, provenance, credentials, log, now, build_ref)
    try:
        if not plan.push:
            log.info(f"Built {', '.join(plan.refs)} (not pushed)")
            return PublishResult(plan, image_id, None, {tag: "built" for tag in plan.tag_names})

        def push_one(tag: str) -> str:
            return push_verified(client, registry_session, plan, tag, (build_ref, image_id), log)

        return push_tags(PublishResult(plan, image_id, None), push_one, guard)
    finally:
        docker_ops.untag(client, build_ref)
