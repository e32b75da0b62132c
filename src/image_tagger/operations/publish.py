"""The job: tag plan -> login -> release checks -> build -> push -> verify -> Flux's outlook -> notify -> report.

One function, `run`, shared by the action, `image-tagger publish` and the demo: each hands it the typed inputs
and the git context, and renders the PublishReport it returns. The outside world comes in through our own
ports (model.ports), so the decisions below also run on fakes, without a daemon or a network.

Everything that can be refused is checked before the first byte goes to a registry: a release tag that another
commit holds before anything is built; the login before the build, or, when BuildKit builds a branch image (and
pushes it in one go, as `docker buildx build --push`, unless it is signed), beside it: a refused login stops the
build at once, and the registry refuses its push anyway; a signing key is opened beside the build too, and one
that cannot be used stops it (exit 2). Each pushed tag is then read back from the registry and must be the image this
run built, so a concurrent run's image is never reported as ours; a release's floating tags are registry-side
copies of the release tag's manifest read back. The result says per tag what happened, also when a later tag
fails.

One winner per release tag. Registries have no compare-and-swap on tags: a manifest PUT always
succeeds, and the last one wins. So a release tag is guarded (ReleaseGuard) in four steps: (a) checked
again right before its push (another commit there: refused, nothing pushed under it; with BuildKit,
which pushes as it builds, right before the build); (b) pushed and
read back; (c) after RELEASE_SETTLE_SECONDS, checked to still name this commit, before any floating tag
moves; (d) checked once more after the floating tags moved. A run reports success only when the tag
names its commit at its end; the other run fails naming the commit that holds the tag.

Why the settle interval closes the common case: two runs race only when each passed (a) before the
other's PUT landed, i.e. the later PUT lands at most one push duration (mostly layer upload) after the
earlier (with BuildKit, one build and push: a cached rebuild of a release is short, a fresh one may
outlast the settle interval). The earlier run looks again at (c), `settle` seconds after its own PUT:
if the later PUT came within that time, the earlier run sees it and fails, and the later run, whose PUT
is last, finds its own commit at (c) and (d) and wins. What stays possible: a rival that passed (a) before our PUT and
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
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from image_tagger.model.errors import BuildError, PublishError, PushStalled
from image_tagger.model.git import GitContext
from image_tagger.model.imagename import ImageName
from image_tagger.model.inputs import PublishInputs, ReleaseOptions, Signing
from image_tagger.model.log import HeldLog, Log
from image_tagger.model.plan import TagPlan
from image_tagger.model.ports import BuildRequest, JobEdges, RegistryView, StoredManifest
from image_tagger.model.registry import RegistryAuth
from image_tagger.model.result import Provenance, PublishResult, PushFailed
from image_tagger.model.states import Builder, PlanKind, PromoteMode, TagState
from image_tagger.rules import provenance as attestation
from image_tagger.rules import releases
from image_tagger.rules.inputs import parse_seconds
from image_tagger.rules.naming import plan_tags
from image_tagger.rules.redact import one_line

if TYPE_CHECKING:
    from pathlib import Path

    from image_tagger.fluxrules.automation import PolicyTarget
    from image_tagger.model.report import PublishReport
    from image_tagger.operations.signing import Signer

T = TypeVar("T")
PUSH_ATTEMPTS = 4
DEFAULT_RELEASE = ReleaseOptions()
PUSH_BACKOFF = 2.0  # seconds, doubled per attempt
HOLD_BACK = 1.0  # seconds the work beside a build waits for the build's start, at most (see Beside)
# Between pushing a release tag and checking that it still names this commit, before floating tags move:
# longer than a rival's manifest PUT usually lags ours (see the module docstring).
RELEASE_SETTLE_SECONDS = 10.0
MAX_SETTLE_SECONDS = 600.0
SETTLE_ENV = "IMAGE_TAGGER_RELEASE_SETTLE"
# How the daemon words registry trouble worth another try (its push stream carries text only, so a
# registry's Retry-After does not reach us: the backoff stands in for it). Compiled on first use, after a failed
# push, not before every build (issue 17).
_TRANSIENT = (
    r"\b(?:50[0-4]|429)\b|toomanyrequests|unavailable|timeout|timed out|\bEOF\b|connection reset|"
    r"connection refused|broken pipe|did not answer in time"
)

# Seconds a registry-side copy of a tag may take, its retries included: a registry that keeps refusing the
# write fails the job about as fast as PUSH_ATTEMPTS refused pushes do, not at the session's long deadline.
COPY_DEADLINE = 20.0


class RegistrySessions(Protocol):
    """A new session with the job's repository; `deadline` as RegistryOpener's."""

    def __call__(self, deadline: float | None = None) -> RegistryView: ...


NO_COMMIT_TIME = "the clock at build time: no commit time in the checkout or the event"


def created_time(provenance: Provenance, now: datetime) -> tuple[datetime, str]:
    """The commit time when known, so rebuilding one commit gives the same labels (and, with BuildKit, times);
    and where it came from, in words."""
    if provenance.commit_time is not None:
        return datetime.fromtimestamp(provenance.commit_time, UTC), provenance.commit_time_from or "the commit time"
    return now, NO_COMMIT_TIME


def oci_labels(plan: TagPlan, provenance: Provenance, created: datetime) -> dict[str, str]:
    """Standard OCI annotations so a running image names its source, commit and version."""
    labels = {
        releases.REVISION: provenance.revision,
        releases.VERSION: plan.version,
        "org.opencontainers.image.created": created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if provenance.source_url:
        labels["org.opencontainers.image.source"] = provenance.source_url
    return labels


def existing_release(session: RegistryView, tag: str) -> tuple[releases.Existing, StoredManifest] | None:
    manifest = session.manifest(tag)
    if manifest is None:
        return None
    labels = session.config_labels(manifest)
    return releases.Existing(tag, manifest.digest, labels.get(releases.REVISION), labels), manifest


def find_branch_build(session: RegistryView, sha: str) -> tuple[releases.Existing, StoredManifest] | None:
    """The newest branch build of this very commit (its revision label says so), if the registry has one."""
    for tag in releases.branch_build_candidates(session.tags(missing_ok=True), sha):
        found = existing_release(session, tag)
        if found and (found[0].revision or "").lower() == sha.lower():
            return found
    return None


def copy_tags(
    registry_session: RegistrySessions,
    plan: TagPlan,
    manifest: StoredManifest,
    state: TagState,
    log: Log,
    guard: ReleaseGuard,
    **extra: Any,
) -> PublishResult:
    """Point every tag of the plan at `manifest` by a registry-side copy: no build, the same bytes."""
    done = {plan.version: state} if state == TagState.ALREADY_PUBLISHED else {}
    copy = copier(registry_session, plan.image, lambda: manifest, log)
    return push_tags(PublishResult(plan, "", manifest.digest, done, **extra), copy, guard, state)


def copier(
    registry_session: RegistrySessions, image: ImageName, manifest: Callable[[], StoredManifest], log: Log
) -> Callable[[str], str]:
    """A push of one tag as a registry-side copy of `manifest()`; returns its digest."""

    def copy(tag: str) -> str:
        source = manifest()
        with registry_session(COPY_DEADLINE) as session:
            session.put_manifest(tag, source)
        log.info(f"{image.ref(tag)} -> {source.digest}")
        return source.digest

    return copy


def push_tags(
    result: PublishResult,
    push_one: Callable[[str], str],
    guard: ReleaseGuard | None,
    primary_state: TagState = TagState.PUSHED,
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
        except BuildError:
            raise  # BuildKit builds as it pushes: a failed step is the build's failure, nothing was pushed
        except PublishError as err:
            raise _push_failed(result, tag, err) from err
        state = primary_state if tag == plan.version else TagState.PUSHED
        result = replace(result, states={**result.states, tag: state}, digest=result.digest or digest)
        moved_after_settle = moved_after_settle or guarded is None
    if guard is not None and moved_after_settle:
        try:
            guard.still_holds("after the floating tags moved")
        except PublishError as err:
            raise _push_failed(result, plan.version, err) from err
    return result


def _push_failed(result: PublishResult, tag: str, err: Exception) -> PushFailed:
    failed = replace(result, states={**result.states, tag: TagState.FAILED}, errors={tag: str(err)})
    return PushFailed(failure_message(failed), failed)


def failure_message(result: PublishResult) -> str:
    """One error naming what failed and, exactly, what is in the registry and what is not."""
    failed = next(iter(result.errors.items()))
    in_registry = result.in_registry
    missing = ", ".join(ref for ref in result.plan.refs if ref not in in_registry)
    pushed = ", ".join(in_registry) or "none"
    return f"{result.plan.image.ref(failed[0])}: {failed[1]} (in the registry: {pushed}; not pushed: {missing})"


def is_transient(err: Exception) -> bool:
    return bool(re.search(_TRANSIENT, str(err), re.IGNORECASE))


def verify(session: RegistryView, image: ImageName, tag: str, image_id: str) -> StoredManifest:
    """The registry's manifest for `tag` must be this run's image (its config, or the index itself)."""
    manifest = session.manifest(tag)
    if manifest is None:
        raise PublishError(f"{image.ref(tag)} is missing from the registry after the push")
    if manifest.digest == image_id or (manifest.json().get("config") or {}).get("digest") == image_id:
        return manifest
    raise PublishError(
        f"{image.ref(tag)} in the registry is {manifest.digest}, not the image this run built ({image_id}); "
        "another run pushed the same tag at the same time"
    )


def push_verified(
    edges: JobEdges,
    registry_session: RegistrySessions,
    request: BuildRequest,
    tag: str,
    log: Log,
) -> tuple[str, StoredManifest]:
    """Push one tag with retries on transient registry trouble, then read it back; returns the image id and the
    registry's manifest. With BuildKit the first push is the build itself, and each retry builds again from cache.

    The read-back follows a failed push too, when we know what was built: a push we gave up on (the daemon silent
    past the SDK's timeout, a connection broken after the manifest went) may have landed, and then the tag is ours.
    """
    plan_ref = request.image.ref(tag)
    image_id = ""
    for attempt in range(1, PUSH_ATTEMPTS + 1):
        pushed: PublishError | None = None
        try:
            image_id = edges.daemon.push(request, tag, log)
        except BuildError:
            raise
        except PublishError as err:
            pushed = err
            image_id = getattr(err, "image_id", "") or image_id
        error = pushed
        if image_id:
            try:
                with registry_session() as session:  # a fresh deadline: the push itself may have taken long
                    manifest = verify(session, request.image, tag, image_id)
            except PublishError as err:
                if pushed is None:
                    error = err
                elif isinstance(pushed, PushStalled):  # say what the registry held when we last looked
                    error = PublishError(f"{pushed}; read back: {err}")
            else:
                if pushed:
                    log.info(f"{plan_ref}: the push reported {pushed}, but the registry holds this run's image")
                return image_id, manifest
        assert error is not None
        if attempt == PUSH_ATTEMPTS or not is_transient(error):
            raise error
        wait = PUSH_BACKOFF * 2 ** (attempt - 1)
        log.info(f"push of {plan_ref} failed ({error}); attempt {attempt + 1} in {wait:.0f}s")
        edges.sleep(wait)
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

    registry_session: RegistrySessions
    plan: TagPlan
    revision: str
    overwrite: bool
    settle: float
    log: Log
    sleep: Callable[[float], None]

    def holder(self) -> releases.Existing | None:
        with self.registry_session() as session:
            found = existing_release(session, self.plan.version)
        return found[0] if found else None

    def push(self, push_one: Callable[[str], str]) -> str:
        """Push the release tag with push_one (which reads it back), guarded; returns its digest."""
        releases.already_published(self.holder(), self.revision, self.overwrite)  # (a): nothing pushed if taken
        try:
            digest = push_one(self.plan.version)  # (b)
        except BuildError:
            raise
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
        releases.check_holder(self.plan.version, self.holder(), self.revision, when)

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
    registry_session: RegistrySessions,
    plan: TagPlan,
    provenance: Provenance,
    release: ReleaseOptions,
    log: Log,
    guard: ReleaseGuard,
    sign: Callable[[str], str] | None = None,
) -> PublishResult | None:
    """An already-published or promoted release; None when it must be built. Refuses another commit's tag.
    With `sign`, the manifest is signed for this release's version before any tag is written."""
    with registry_session() as session:
        found = existing_release(session, plan.version)
        published = releases.already_published(found[0] if found else None, provenance.revision, release.overwrite)
        promote = release.promote == PromoteMode.AUTO and not published
        source = find_branch_build(session, provenance.revision) if promote else None
    if published and found:
        log.info(f"{plan.image.ref(plan.version)} is already published from this commit ({found[1].digest})")
        signed = {"signature": sign(found[1].digest)} if sign else {}
        done = copy_tags(registry_session, plan, found[1], TagState.ALREADY_PUBLISHED, log, guard, **signed)
        done = replace(done, labels=dict(found[0].labels), created_from="the published image's own label")
        return attach_version(registry_session, done, found[1], provenance, log)
    if source:
        branch, manifest = source
        log.info(f"{plan.image.ref(plan.version)}: promoted from {branch.tag} ({manifest.digest}), no build")
        signed = {"signature": sign(manifest.digest)} if sign else {}
        done = copy_tags(
            registry_session,
            plan,
            manifest,
            TagState.PROMOTED,
            log,
            guard,
            promoted_from=branch.tag,
            labels=dict(branch.labels),  # the labels find_branch_build read: the branch build's, part of its bytes
            created_from=f"the label of {branch.tag}, the branch build promoted",
            **signed,
        )
        return attach_version(registry_session, done, manifest, provenance, log)
    return None


def attach_version(
    registry_session: RegistrySessions,
    result: PublishResult,
    manifest: StoredManifest,
    provenance: Provenance,
    log: Log,
) -> PublishResult:
    """A release whose image's labels name another version (a promoted branch build) gets its own version beside
    the image, as an OCI referrer: the bytes, labels and digest stay the ones staging ran. Failing to attach it
    is a warning: the release tag is in place, and Flux selects by tag."""
    version = result.plan.version
    if result.labels.get(releases.VERSION) in (None, version):
        return result
    try:
        with registry_session() as session:
            digest = session.attach(
                manifest, releases.RELEASE_ARTIFACT, releases.release_annotations(version, provenance.revision)
            )
    except PublishError as err:
        return replace(result, warnings=(*result.warnings, f"the release version was not attached beside it: {err}"))
    log.info(f"{result.plan.image.ref(version)}: version {version} attached as referrer {digest}")
    return replace(result, release_referrer=digest)


def publish(
    edges: JobEdges,
    plan: TagPlan,
    given: PublishInputs,
    provenance: Provenance,
    log: Log,
    settle: float,
    key: Beside[Signer | None] | None = None,
) -> PublishResult:
    """Log in, check, build, push: raises PublishError (or InputError), and leaves the registry untouched on
    refusal; PushFailed carries what did reach the registry. With `key` (being opened beside the build), the image
    goes up by digest and is signed for its version before any tag is written."""
    credentials = given.credentials
    stop = key.stop if key is not None else threading.Event()  # set when a check beside the build fails
    started = key.started if key is not None else threading.Event()  # set once the build runs

    def registry_session(deadline: float | None = None) -> RegistryView:
        """One session per phase: each has its own deadline, and a build in between may take long."""
        return edges.registry(plan.image, credentials, deadline)

    def sign(digest: str) -> str:
        from image_tagger.operations import signing

        assert key is not None
        signer = key.wait()
        assert signer is not None
        return signing.sign(registry_session, signer, plan.image, digest, plan.version, log)

    guard = None
    if plan.push and plan.kind == PlanKind.RELEASE:
        guard = ReleaseGuard(
            registry_session, plan, provenance.revision, given.release.overwrite, settle, log, edges.sleep
        )
    buildkit = given.build.builder != Builder.LEGACY
    buildkit_pushes = plan.push and buildkit and key is None
    login: Beside[None] | None = None
    if plan.push and credentials.username:
        if buildkit and guard is None:  # nothing to read from the registry first: check beside the build
            login = Beside(lambda: edges.daemon.login(plan.image, credentials), stop, "login-check", started)
        else:
            edges.daemon.login(plan.image, credentials)
            log.info(f"Logged in to {plan.image.registry} as {credentials.username}")
    if guard is not None:
        done = release_without_build(
            registry_session, plan, provenance, given.release, log, guard, sign if key else None
        )
        if done is not None:
            return done
    # A local tag of this run alone: daemon pushes retag from it, so another run that moved a shared tag
    # meanwhile cannot hand us its image.
    build_ref = plan.image.ref(f"image-tagger-build-{os.urandom(6).hex()}")
    created, created_from = created_time(provenance, datetime.fromtimestamp(edges.clock(), UTC))
    labels = oci_labels(plan, provenance, created)
    if created_from == NO_COMMIT_TIME:
        log.info(f"created: {created_from}, so a rebuild of this commit gives another image config")
    options = given.build
    mode, attested = attestation.wanted(options.provenance, provenance.private, options.builder)
    if mode is not None and not edges.daemon.attestations():
        mode, attested = None, attestation.NO_STORE
    request = BuildRequest(
        given.build,
        plan.image,
        plan.tag_names,
        build_ref,
        labels,
        int(created.timestamp()),
        credentials,
        stop if login or key else None,
        mode,
        by_digest=key is not None,
        started=started,
    )
    built: dict[str, Any] = {"labels": labels, "created_from": created_from, "provenance": attested}
    if buildkit_pushes:
        return buildkit_push(edges, registry_session, request, plan, guard, login, log, **built)

    def checked_beside() -> None:
        """The key's and the login's verdicts, once they are in: a refusal is the job's answer."""
        for check in (key, login):
            if check is not None:
                check.wait()

    try:
        image_id = edges.daemon.build(request, log)
    except PublishError:
        checked_beside()  # one that failed stopped the build: that is the reason to give
        raise
    try:
        if not plan.push:
            log.info(f"Built {', '.join(plan.refs)} (not pushed)")
            return PublishResult(plan, image_id, None, {tag: TagState.BUILT for tag in plan.tag_names}, **built)
        if key is not None:  # by digest, signed as soon as the digest is known, and only then the tags
            checked_beside()
            if login is not None:
                log.info(f"Logged in to {plan.image.registry} as {credentials.username}")
            if guard is not None:
                releases.already_published(guard.holder(), guard.revision, guard.overwrite)  # taken: nothing goes up
            signed: list[str] = []
            manifest = edges.daemon.upload(build_ref, plan.image, credentials, lambda d: signed.append(sign(d)))
            log.info(f"{plan.image.name}@{manifest.digest}: uploaded by digest, no tag yet")
            done = copy_tags(registry_session, plan, manifest, TagState.PUSHED, log, guard, **built)
            return replace(done, image_id=image_id, signature=signed[0])

        def push_one(tag: str) -> str:
            return push_verified(edges, registry_session, request, tag, log)[1].digest

        return push_tags(PublishResult(plan, image_id, None, **built), push_one, guard)
    finally:
        edges.daemon.untag(build_ref)


def buildkit_push(
    edges: JobEdges,
    registry_session: RegistrySessions,
    request: BuildRequest,
    plan: TagPlan,
    guard: ReleaseGuard | None,
    login: Beside[None] | None,
    log: Log,
    **built: Any,
) -> PublishResult:
    """BuildKit builds and pushes the primary tag in one go, as `docker buildx build --push` does; the other tags
    (a release's floating tags) are registry-side copies of the manifest read back, so no second upload."""
    primary: list[tuple[str, StoredManifest]] = []

    def push_one(tag: str) -> str:
        if tag != plan.version:
            return copier(registry_session, plan.image, lambda: primary[0][1], log)(tag)
        primary.append(push_verified(edges, registry_session, request, tag, log))
        return primary[0][1].digest

    def with_image(result: PublishResult) -> PublishResult:
        return replace(result, image_id=primary[0][0]) if primary else result

    try:
        result = push_tags(PublishResult(plan, "", None, **built), push_one, guard)
    except PushFailed as err:
        if login is not None:
            login.wait()
        raise PushFailed(str(err), with_image(err.result)) from err
    except PublishError:
        if login is not None:
            login.wait()  # a refused login stopped the build: that is the reason to give
        raise
    if login is not None:
        try:
            login.wait()
        except PublishError as err:  # the registry took the push with these credentials: the check misjudged
            return with_image(replace(result, warnings=(*result.warnings, f"the login check failed: {err}")))
        log.info(f"Logged in to {plan.image.registry} as {request.credentials.username}")
    return with_image(result)


class Beside(Generic[T]):
    """Work in a thread beside the build (the login check, opening the signing key, whose scrypt alone takes a few
    tenths of a second): `stop` is set the moment it fails, so the build ends early, and the build's own start waits
    for none of it (no Docker SDK import, daemon, registry or key derivation).

    The work itself waits for `started` (set once the build runs, or by `wait`; at most HOLD_BACK seconds): its
    imports hold the interpreter, and while the job was still on its way to starting buildx they delayed the build's
    start by some 20 ms (issue 18)."""

    def __init__(
        self, work: Callable[[], T], stop: threading.Event, name: str, started: threading.Event | None = None
    ) -> None:
        self.stop = stop
        self.started = started if started is not None else threading.Event()
        self._value: T | None = None
        self._error: Exception | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), name=name, daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[], T]) -> None:
        self.started.wait(HOLD_BACK)
        try:
            self._value = work()
        except Exception as err:  # noqa: BLE001 - handed to the job's thread by wait()
            self._error = err
            self.stop.set()

    def wait(self) -> T:
        """Wait for the work; its value, or its error raised here."""
        self.started.set()
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


def run(given: PublishInputs, ctx: GitContext, edges: JobEdges, log: Log, settle: float | None = None) -> PublishReport:
    """The whole job for one git event; the one report says what happened, also when it failed.

    Raises InputError only, before anything is pushed (bad input: exit code 2), and before anything is shown: before
    anything is built, but for a signing key that cannot be used. That one is found out beside the build (cosign's
    scrypt takes a few tenths of a second), which it stops, and the job's log is held back until the key opened.
    `settle` is the release settle interval, by default RELEASE_SETTLE_SECONDS or $IMAGE_TAGGER_RELEASE_SETTLE.
    """
    plan = plan_tags(ctx, given.image, given.naming, now=int(edges.clock()))
    targets = overlay_targets(given.overlay) if given.overlay else []
    key = None
    if plan.push and given.signing is not None:
        key, log = open_beside(given.signing, log)
    elif plan.push and given.keyless is not None:
        from image_tagger.operations import signing

        signer = signing.open_keyless(given.keyless, given.credentials, os.environ)  # no token endpoint: exit 2 here
        key = Beside(lambda: signer, threading.Event(), "keyless-signing")
    try:
        return _job(edges, plan, given, ctx, log, settle, key, targets)
    finally:
        if key is not None:
            key.wait()  # a key that cannot be used is the answer (InputError), whatever else the job met


def _job(
    edges: JobEdges,
    plan: TagPlan,
    given: PublishInputs,
    ctx: GitContext,
    log: Log,
    settle: float | None,
    key: Beside[Signer | None] | None,
    targets: list[PolicyTarget],
) -> PublishReport:
    """`run` once the signer is on its way: publish, then Flux's outlook and the notifications, in one report."""
    settle = release_settle(os.environ) if settle is None else settle
    log.info(f"{plan.kind} {ctx.ref} -> {', '.join(plan.refs)} (push: {str(plan.push).lower()})")
    provenance = Provenance(ctx.sha, ctx.source_url, ctx.commit_time, ctx.commit_time_from, ctx.private)
    failed: PublishError | None = None
    try:
        result: PublishResult | None = publish(edges, plan, given, provenance, log, settle, key)
    except PushFailed as err:
        result, failed = err.result, err
    except PublishError as err:
        result, failed = None, err
    # The report's types and Flux's verdicts: imported after the build (issue 17), loaded beside it (edges/jobports).
    from image_tagger.model.report import Failure, PublishReport
    from image_tagger.rules import report

    failure = None
    if isinstance(failed, BuildError):
        failure = Failure(str(failed), f"Build failed: {failed.step}" if failed.step else "Build failed")
    elif failed is not None:
        failure = Failure(str(failed))
    if result is None:
        return PublishReport(plan, None, failure=failure)
    verdicts = tuple(report.flux_verdicts(plan, given.naming.major_version))
    if not result.available:
        return PublishReport(plan, result, verdicts, failure=failure)
    pushed_at = edges.clock()
    forecast, warnings = overlay_outlook(edges, targets, plan, given.credentials) if targets else ((), ())
    warnings = (*result.warnings, *warnings)
    # The release tag is in the registry: every cluster's Flux may rescan now.
    notifications = tuple(edges.notify(given.receivers, result, log.info))
    return PublishReport(plan, result, verdicts, forecast, notifications, warnings, failure, pushed_at)


def open_beside(given: Signing, log: Log) -> tuple[Beside[Signer | None], Log]:
    """The signing key, opened in a thread, and the job's log, held back until it opened (a key that cannot be used
    is bad input: one line, exit 2, and nothing else shown)."""
    held = HeldLog(log)

    def opened() -> Signer | None:
        from image_tagger.operations import signing  # cryptography and cosign's format: only for signed jobs

        signer = signing.open_signer(given)
        held.release()
        return signer

    return Beside(opened, threading.Event(), "signing-key"), held


def overlay_targets(overlay: Path) -> list[PolicyTarget]:
    """The overlay's image policies. Imported here: the YAML reader and Flux's rules cost a job without an
    overlay some 40 ms of start-up before its build (issue 17)."""
    from image_tagger.edges import manifests
    from image_tagger.fluxrules import automation

    return automation.find_targets(manifests.load_objects(overlay))


def overlay_outlook(
    edges: JobEdges, targets: list[PolicyTarget], plan: TagPlan, credentials: RegistryAuth
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What the overlay's policies do with the new tag, from the registry's current tag list (one line each:
    the tags are the registry's, so a tag name cannot start a line of its own); else a warning why not."""
    from image_tagger.fluxrules import automation

    try:
        with edges.registry(plan.image, credentials) as session:
            tags = session.tags()
    except PublishError as err:
        return (), (f"overlay preview skipped: {err}",)
    return tuple(one_line(line) for line in automation.outlook(targets, tags, plan.image.name, plan.version)), ()
