"""The publish job's own decisions, fast: release immutability, promotion, partial failure, retries.

The job runs whole (operations.publish.run) on fakes of OUR ports (model.ports): a daemon that keeps local tags
in a dict, a registry that keeps manifests in a dict, a notifier that records, a clock and a sleep that only
count. No daemon, no registry process, no network: what these tests claim is the job's logic; that Docker and a
registry behave as the fakes do is what the daemon tests (test_cli_publish, test_action_e2e, test_push_faults,
test_release_race) show on real ones.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from image_tagger.edges import context
from image_tagger.edges.buildkit import BuildError
from image_tagger.edges.signer import load_public_key
from image_tagger.model.errors import InputError, NotPushed, PublishError
from image_tagger.model.git import GitContext
from image_tagger.model.imagename import ImageName, parse_image
from image_tagger.model.inputs import BuildOptions, PublishInputs, ReleaseOptions, Signing
from image_tagger.model.log import HeldLog, KeptLog, Log
from image_tagger.model.plan import NamingOptions
from image_tagger.model.ports import BuildRequest, JobEdges
from image_tagger.model.receivers import Notification, Receiver
from image_tagger.model.registry import RegistryAuth
from image_tagger.model.report import PublishReport
from image_tagger.model.result import PublishResult
from image_tagger.model.states import Builder, PromoteMode, PushMode, TagState
from image_tagger.operations import publish
from image_tagger.rules import report
from image_tagger.rules.releases import RELEASE_ARTIFACT, REVISION, VERSION
from image_tagger.rules.signatures import SignatureLayer, claim_problem

SHA = "3f2c1a9e5b7d0c4a1f2e3d4c5b6a798817263540"
OTHER = "b" * 40
PUSHED = 1764110000
IMAGE = "registry.test/acme/app"
DEFAULT_RELEASE = ReleaseOptions()
TRANSIENT = "push of registry.test/acme/app failed: received unexpected HTTP status: 503 Service Unavailable"


@dataclass(frozen=True)
class Manifest:
    """What the fake registry stores under a tag: the image's config digest and its labels."""

    config: str
    labels: dict[str, str]

    @property
    def digest(self) -> str:
        return "sha256:m" + self.config.removeprefix("sha256:")

    def json(self) -> dict[str, Any]:
        return {"config": {"digest": self.config}}


@dataclass
class Registry:
    """The repository's tags; `on_put` lets a test act as a rival run right after one of our pushes."""

    manifests: dict[str, Manifest] = field(default_factory=dict)
    on_put: Callable[[str], None] = lambda tag: None
    down: bool = False
    list_error: PublishError | None = None
    referrers: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    attach_error: PublishError | None = None
    put_errors: dict[str, PublishError] = field(default_factory=dict)  # a copy refused, per tag
    copies: list[str] = field(default_factory=list)
    by_digest: dict[str, Manifest] = field(default_factory=dict)  # uploaded with no tag
    signatures: dict[str, list[SignatureLayer]] = field(default_factory=dict)
    signature_error: PublishError | None = None

    def session(self, image: ImageName, credentials: RegistryAuth, deadline: float | None = None) -> Registry:
        return self

    def __enter__(self) -> Registry:
        if self.down:
            raise PublishError("registry registry.test did not answer in time")
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def tags(self, missing_ok: bool = False) -> list[str]:
        if self.list_error:
            raise self.list_error
        return list(self.manifests)

    def manifest(self, reference: str) -> Manifest | None:
        return self.manifests.get(reference) or self.by_digest.get(reference)

    def signature_layers(self, digest: str) -> list[SignatureLayer]:
        return list(self.signatures.get(digest, []))

    def put_signature(
        self, digest: str, layer: SignatureLayer, unless: Callable[[list[SignatureLayer]], bool] | None = None
    ) -> str | None:
        if self.signature_error:
            raise self.signature_error
        if unless is not None and unless(self.signature_layers(digest)):
            return None
        self.signatures.setdefault(digest, []).append(layer)
        return "sha256:signature"

    def config_labels(self, manifest: Manifest) -> dict[str, str]:
        return manifest.labels

    def put_manifest(self, tag: str, manifest: Manifest) -> str:
        """A registry-side copy (a pushed image lands through `land`)."""
        self.copies.append(tag)
        if tag in self.put_errors:
            raise self.put_errors[tag]
        return self.land(tag, manifest)

    def land(self, tag: str, manifest: Manifest) -> str:
        self.manifests[tag] = manifest
        self.on_put(tag)
        return manifest.digest

    def attach(self, subject: Manifest, artifact_type: str, annotations: Mapping[str, str]) -> str:
        if self.attach_error:
            raise self.attach_error
        self.referrers.append((subject.digest, artifact_type, dict(annotations)))
        return f"sha256:referrer{len(self.referrers)}"

    def rival(self, tag: str, revision: str = OTHER) -> None:
        """Another commit's run pushes `tag`."""
        self.manifests[tag] = Manifest(f"sha256:{revision[:8]}", {REVISION: revision})


@dataclass
class Daemon:
    """Builds and pushes as the real one does: BuildKit builds and pushes a tag in one go (a push again rebuilds
    from cache: one build), the legacy builder's image is built first and pushed per tag; a queued failure, or a
    wrong login (the registry refuses it), fails a push."""

    registry: Registry
    images: dict[str, Manifest] = field(default_factory=dict)  # the daemon's local tags
    built: dict[str, Manifest] = field(default_factory=dict)  # by build_ref
    builds: list[BuildRequest] = field(default_factory=list)
    pushes: list[str] = field(default_factory=list)
    failures: dict[str, list[PublishError]] = field(default_factory=dict)  # per tag, one per attempt
    login_error: PublishError | None = None
    build_error: PublishError | None = None
    logins: int = 0
    stopped: bool = False  # a BuildKit push that the job stopped, its login refused
    containerd_store: bool = False  # whether attestations can be stored (provenance)

    def attestations(self) -> bool:
        return self.containerd_store

    def login(self, image: ImageName, credentials: RegistryAuth) -> None:
        self.logins += 1
        if self.login_error:
            raise self.login_error

    def _build(self, request: BuildRequest) -> Manifest:
        if request.build_ref not in self.built:
            self.builds.append(request)
            if self.build_error:
                raise self.build_error
            self.built[request.build_ref] = Manifest(f"sha256:built{len(self.builds)}", dict(request.labels))
        return self.built[request.build_ref]

    @staticmethod
    def _runs(request: BuildRequest) -> None:
        """The build runs: the job's work beside it may go (jobports sets this once buildx has started)."""
        if request.started is not None:
            request.started.set()

    def build(self, request: BuildRequest, log: Log) -> str:
        self._runs(request)
        image = self._build(request)
        for ref in (*(request.image.ref(tag) for tag in request.tags), request.build_ref):
            self.images[ref] = image
        return image.config

    def push(self, request: BuildRequest, tag: str, log: Log) -> str:
        self.pushes.append(tag)
        if request.options.builder == Builder.LEGACY:
            image = self.images[request.build_ref]
        else:
            self._runs(request)
            if self.login_error and request.stop is not None:  # the job checks the login meanwhile: it must stop us
                self.stopped = request.stop.wait(5)
                raise BuildError("build of registry.test/acme/app failed: buildx exited with -15")
            image = self._build(request)
        if self.login_error:
            raise PublishError(f"push of {request.image.ref(tag)} failed: unauthorized: authentication required")
        queued = self.failures.get(tag)
        if queued:
            raise queued.pop(0)
        self.registry.land(tag, image)
        return image.config

    def untag(self, ref: str) -> None:
        self.images.pop(ref, None)

    def upload(
        self, ref: str, image: ImageName, credentials: RegistryAuth, beside: Callable[[str], object] | None = None
    ) -> Manifest:
        manifest = self.images[ref]
        self.registry.by_digest[manifest.digest] = manifest
        if beside is not None:  # the real one runs it while the blobs go up; its error comes after the upload's
            beside(manifest.digest)
        return manifest


@dataclass
class Notifier:
    calls: list[tuple[tuple[Receiver, ...], PublishResult]] = field(default_factory=list)

    def __call__(
        self, receivers: Sequence[Receiver], result: PublishResult, log: Callable[[str], None]
    ) -> list[Notification]:
        self.calls.append((tuple(receivers), result))
        return [Notification(True, f"Flux notified: {r.url} answered 200", 1, r.url) for r in receivers]


@dataclass
class World:
    registry: Registry = field(default_factory=Registry)
    notifier: Notifier = field(default_factory=Notifier)
    sleeps: list[float] = field(default_factory=list)
    log: KeptLog = field(default_factory=KeptLog)
    during_sleep: Callable[[], None] = lambda: None  # what other runs do while this one waits
    daemon: Daemon = field(init=False)

    def __post_init__(self) -> None:
        self.daemon = Daemon(self.registry)

    def edges(self) -> JobEdges:
        return JobEdges(self.daemon, self.registry.session, self.notifier, lambda: PUSHED + 100.0, self.sleep)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.during_sleep()

    def run(
        self,
        ref: str,
        *,
        floating: bool = False,
        push: PushMode = PushMode.AUTO,
        release: ReleaseOptions = DEFAULT_RELEASE,
        username: str = "ci-bot",
        receivers: tuple[Receiver, ...] = (Receiver("https://flux.test/hook/1", "token"),),
        settle: float = 0.5,
        overlay: Path | None = None,
        ctx: GitContext | None = None,
        builder: Builder = Builder.BUILDKIT,
        signing: Signing | None = None,
        platforms: tuple[str, ...] = (),
    ) -> PublishReport:
        inputs = PublishInputs(
            workspace=Path("/nonexistent"),
            image=parse_image(IMAGE),
            naming=NamingOptions(floating_tags=floating, push=push),
            credentials=RegistryAuth(username, "pw" if username else ""),
            build=BuildOptions(
                Path("/nonexistent"), Path("/nonexistent/Dockerfile"), platforms=platforms, builder=builder
            ),
            release=release,
            overlay=overlay,
            receivers=receivers,
            signing=signing,
        )
        ctx = ctx or GitContext(event="push", ref=ref, sha=SHA, push_time=PUSHED, commit_time=PUSHED - 60)
        return publish.run(inputs, ctx, self.edges(), self.log, settle=settle)

    def branch_build(self, tag: str = f"main-3f2c1a9-{PUSHED - 3600}", revision: str = SHA) -> Manifest:
        """What an earlier branch run of `revision` left in the registry."""
        manifest = Manifest("sha256:staging", {REVISION: revision, VERSION: tag})
        self.registry.manifests[tag] = manifest
        return manifest


@pytest.fixture
def world() -> World:
    return World()


def states(job: PublishReport) -> dict[str, TagState]:
    assert job.result is not None, job.failure
    return dict(job.result.states)


def test_a_branch_push_builds_pushes_reads_back_and_notifies(world: World) -> None:
    job = world.run("refs/heads/main")

    tag = f"main-3f2c1a9-{PUSHED}"
    assert (job.exit_code, job.failure, states(job)) == (0, None, {tag: TagState.PUSHED})
    assert world.daemon.logins == 1 and len(world.daemon.builds) == 1
    built = world.daemon.builds[0]
    assert built.labels[REVISION] == SHA and built.source_date_epoch == PUSHED - 60  # the commit time
    assert job.result.digest == world.registry.manifests[tag].digest
    assert [call[1] for call in world.notifier.calls] == [job.result]
    assert job.pushed_at == PUSHED + 100.0
    assert not [ref for ref in world.daemon.images if "image-tagger-build-" in ref]  # the run's own tag is gone
    assert [v.picks for v in job.verdicts] == [True]  # the newest main build policy picks it


def test_push_false_builds_and_leaves_the_registry_and_flux_alone(world: World) -> None:
    job = world.run("refs/heads/main", push=PushMode.FALSE)

    assert states(job) == {f"main-3f2c1a9-{PUSHED}": TagState.BUILT}
    assert world.registry.manifests == {} and world.notifier.calls == [] and world.daemon.logins == 0
    assert job.exit_code == 0 and job.pushed_at is None


def test_a_release_another_commit_holds_is_refused_before_any_build(world: World) -> None:
    world.registry.rival("1.4.2")
    before = dict(world.registry.manifests)

    job = world.run("refs/tags/v1.4.2", floating=True)

    assert job.exit_code == 1 and job.result is None
    assert "release tag 1.4.2 already names bbbbbbbbbbbb" in job.failure.message
    assert "overwrite-releases" in job.failure.message
    assert world.daemon.builds == [] and world.daemon.pushes == []
    assert world.registry.manifests == before and world.notifier.calls == []


def test_overwrite_releases_replaces_another_commits_release(world: World) -> None:
    world.registry.rival("1.4.2")

    job = world.run("refs/tags/v1.4.2", release=ReleaseOptions(overwrite=True))

    assert states(job) == {"1.4.2": TagState.PUSHED}
    assert world.registry.manifests["1.4.2"].labels[REVISION] == SHA


def test_a_release_this_commit_already_published_is_not_built_again(world: World) -> None:
    world.registry.manifests["1.4.2"] = published = Manifest("sha256:first", {REVISION: SHA})

    job = world.run("refs/tags/v1.4.2", floating=True)

    assert world.daemon.builds == []
    assert states(job) == {
        "1.4.2": TagState.ALREADY_PUBLISHED,
        "1.4": TagState.PUSHED,
        "1": TagState.PUSHED,
        "latest": TagState.PUSHED,
    }
    assert {tag: m.digest for tag, m in world.registry.manifests.items()} == dict.fromkeys(
        ("1.4.2", "1.4", "1", "latest"), published.digest
    )
    assert report.heading(job.result) == f"Release already published: {IMAGE}:1.4.2@{published.digest}"
    # `pushed` is exact: nothing was written under the release tag; `outcome` and `digest` say what is there.
    outputs = report.outputs(job.result)
    assert (outputs["pushed"], outputs["outcome"], outputs["digest"]) == (
        "false",
        "already-published",
        published.digest,
    )
    assert json.loads(outputs["json"])["pushed"] is False
    assert len(world.notifier.calls) == 1  # the tags are in the registry: Flux hears of them


def test_a_release_is_promoted_from_this_commits_branch_build(world: World) -> None:
    staging = world.branch_build()
    world.branch_build(f"main-3f2c1a9-{PUSHED - 7200}")  # an older build of the same commit: the newest wins
    world.branch_build(f"main-bbbbbbb-{PUSHED}", revision=OTHER)

    job = world.run("refs/tags/v1.4.2")

    assert world.daemon.builds == []
    assert states(job) == {"1.4.2": TagState.PROMOTED}
    assert job.result.promoted_from == f"main-3f2c1a9-{PUSHED - 3600}"
    assert world.registry.manifests["1.4.2"] == staging
    assert job.result.as_dict()["outcome"] == "promoted"
    # The bytes and labels stay the branch build's; the release's version travels beside them, and says so.
    assert job.result.labels[VERSION] == f"main-3f2c1a9-{PUSHED - 3600}"
    assert world.registry.referrers == [
        (staging.digest, RELEASE_ARTIFACT, {VERSION: "1.4.2", REVISION: SHA}),
    ]
    assert job.result.as_dict()["release_referrer"] == "sha256:referrer1"
    assert (report.outputs(job.result)["pushed"], report.outputs(job.result)["outcome"]) == ("true", "promoted")
    text = report.job_summary(job, job.result)
    assert f"`{VERSION}` reads `main-3f2c1a9-{PUSHED - 3600}`" in text and "sha256:referrer1" in text


def test_a_release_version_that_cannot_be_attached_is_a_warning_not_a_failure(world: World) -> None:
    staging = world.branch_build()
    world.registry.attach_error = PublishError("registry registry.test: HTTP 415 from PUT /v2/acme/app/manifests/x")

    job = world.run("refs/tags/v1.4.2")

    assert job.exit_code == 0 and states(job) == {"1.4.2": TagState.PROMOTED}
    assert world.registry.manifests["1.4.2"] == staging
    assert [w for w in job.warnings if "release version was not attached" in w and "HTTP 415" in w]
    assert job.result.as_dict()["release_referrer"] == ""


def test_promote_never_builds_the_release(world: World) -> None:
    world.branch_build()

    job = world.run("refs/tags/v1.4.2", release=ReleaseOptions(promote=PromoteMode.NEVER))

    assert states(job) == {"1.4.2": TagState.PUSHED} and len(world.daemon.builds) == 1
    assert job.result.promoted_from is None


def test_a_branch_build_of_another_commit_is_never_promoted(world: World) -> None:
    world.branch_build(revision=OTHER)  # its tag names our short sha, its label another commit

    job = world.run("refs/tags/v1.4.2")

    assert states(job) == {"1.4.2": TagState.PUSHED} and len(world.daemon.builds) == 1


def test_a_later_tag_failing_says_exactly_what_is_in_the_registry(world: World) -> None:
    world.registry.put_errors["1"] = PublishError("registry registry.test: denied: quota exceeded")

    job = world.run("refs/tags/v1.4.2", floating=True)

    assert job.exit_code == 1
    assert states(job) == {"1.4.2": TagState.PUSHED, "1.4": TagState.PUSHED, "1": TagState.FAILED}
    assert set(world.registry.manifests) == {"1.4.2", "1.4"}  # what the result says: no more, no less
    assert job.failure.message == (
        f"{IMAGE}:1: registry registry.test: denied: quota exceeded "
        f"(in the registry: {IMAGE}:1.4.2, {IMAGE}:1.4; not pushed: {IMAGE}:1, {IMAGE}:latest)"
    )
    tag_states = job.result.as_dict()["tag_states"]
    assert tag_states[f"{IMAGE}:latest"] == "not pushed" and tag_states[f"{IMAGE}:1"] == "failed"
    # BuildKit pushed the release tag as it built; the floating tags are copies of its manifest, in order, and
    # nothing runs after a refusal.
    assert world.daemon.pushes == ["1.4.2"] and world.registry.copies == ["1.4", "1"]
    assert job.result.image_id == "sha256:built1"
    assert len(world.notifier.calls) == 1  # the release tag is in: Flux is told, as the action does
    assert report.heading(job.result).startswith("Image pushed: ")


def test_the_legacy_builder_pushes_every_tag_through_the_daemon(world: World) -> None:
    world.daemon.failures["1"] = [PublishError("push of registry.test/acme/app:1 failed: denied: quota exceeded")]

    job = world.run("refs/tags/v1.4.2", floating=True, builder=Builder.LEGACY)

    assert states(job) == {"1.4.2": TagState.PUSHED, "1.4": TagState.PUSHED, "1": TagState.FAILED}
    assert world.daemon.pushes == ["1.4.2", "1.4", "1"] and world.registry.copies == []
    assert len(world.daemon.builds) == 1 and job.result.image_id == "sha256:built1"
    assert not [ref for ref in world.daemon.images if "image-tagger-build-" in ref]  # the run's own tag is gone


def test_transient_push_failures_are_retried_with_backoff(world: World) -> None:
    tag = f"main-3f2c1a9-{PUSHED}"
    world.daemon.failures[tag] = [PublishError(TRANSIENT), PublishError(TRANSIENT)]

    job = world.run("refs/heads/main")

    assert states(job) == {tag: TagState.PUSHED}
    assert world.daemon.pushes == [tag, tag, tag]
    assert world.sleeps == [2.0, 4.0]
    assert sum("attempt 2 in 2s" in line for line in world.log.lines) == 1


def test_a_push_that_keeps_failing_gives_up_after_the_last_attempt(world: World) -> None:
    tag = f"main-3f2c1a9-{PUSHED}"
    world.daemon.failures[tag] = [PublishError(TRANSIENT)] * publish.PUSH_ATTEMPTS

    job = world.run("refs/heads/main")

    assert len(world.daemon.pushes) == publish.PUSH_ATTEMPTS
    assert world.sleeps == [2.0, 4.0, 8.0]
    assert states(job) == {tag: TagState.FAILED} and "503" in job.failure.message
    assert world.registry.manifests == {} and world.notifier.calls == []


def test_a_push_reported_failed_that_landed_is_ours(world: World) -> None:
    """BuildKit said the push failed, but the manifest arrived: the read-back finds this run's image, so it counts."""
    tag = f"main-3f2c1a9-{PUSHED}"
    push = world.daemon.push

    def lands_then_fails(request: BuildRequest, tag_name: str, log: Log) -> str:
        image_id = push(request, tag_name, log)
        raise NotPushed(TRANSIENT, image_id)

    world.daemon.push = lands_then_fails  # type: ignore[method-assign]

    job = world.run("refs/heads/main")

    assert states(job) == {tag: TagState.PUSHED} and world.sleeps == []
    assert any("but the registry holds this run's image" in line for line in world.log.lines)


def test_a_rival_release_landing_in_the_settle_interval_fails_this_run_before_floating_tags_move(
    world: World,
) -> None:
    world.during_sleep = lambda: world.registry.rival("1.4.2")

    job = world.run("refs/tags/v1.4.2", floating=True, settle=3.0)

    assert world.sleeps == [3.0] and world.daemon.pushes == ["1.4.2"]
    assert job.exit_code == 1 and "names bbbbbbbbbbbb" in job.failure.message
    assert "before the floating tags moved; the release is theirs" in job.failure.message
    assert states(job) == {"1.4.2": TagState.FAILED}
    assert set(world.registry.manifests) == {"1.4.2"}  # the floating tags never moved to our image
    assert world.notifier.calls == []


def test_a_rival_release_landing_during_our_push_is_named_as_the_holder(world: World) -> None:
    world.registry.on_put = lambda tag: world.registry.rival(tag)  # their PUT lands right after ours

    job = world.run("refs/tags/v1.4.2")

    assert job.exit_code == 1 and "while this run pushed it; the release is theirs" in job.failure.message
    assert world.daemon.pushes == ["1.4.2"]  # a lost release is not retried


LOGIN_REFUSED = PublishError("login to registry.test as 'ci-bot' failed: unauthorized")


@pytest.mark.parametrize("ref", ["refs/heads/main", "refs/tags/v1.4.2"])
def test_a_wrong_login_fails_before_a_daemon_build_or_a_release(world: World, ref: str) -> None:
    """The legacy builder, and a release (whose registry checks need the login), check it before anything else."""
    world.daemon.login_error = LOGIN_REFUSED

    job = world.run(ref, builder=Builder.LEGACY if ref.startswith("refs/heads/") else Builder.BUILDKIT)

    assert (job.exit_code, job.result) == (1, None)
    assert job.failure.title == "Publish failed" and "unauthorized" in job.failure.message
    assert world.daemon.builds == [] and world.daemon.pushes == []


def test_a_wrong_login_stops_the_buildkit_build_that_runs_beside_its_check(world: World) -> None:
    """A BuildKit branch push starts building at once; the login refused meanwhile stops it, and is the failure."""
    world.daemon.login_error = LOGIN_REFUSED

    job = world.run("refs/heads/main")

    assert world.daemon.stopped
    assert (job.exit_code, job.result, world.registry.manifests) == (1, None, {})
    assert job.failure.title == "Publish failed" and job.failure.message == str(LOGIN_REFUSED)


def test_a_failed_build_is_named_by_its_step(world: World) -> None:
    world.daemon.build_error = BuildError("RUN make failed", step="[2/3] RUN make")

    job = world.run("refs/heads/main")

    assert (job.exit_code, job.result, world.registry.manifests) == (1, None, {})
    assert job.failure.title == "Build failed: [2/3] RUN make"


def test_an_anonymous_push_does_not_log_in(world: World) -> None:
    job = world.run("refs/heads/main", username="")

    assert job.exit_code == 0 and world.daemon.logins == 0


OVERLAY = f"""\
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {{name: app, namespace: flux-system}}
spec: {{image: {IMAGE}, interval: 5m}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {{name: app-main, namespace: flux-system}}
spec:
  imageRepositoryRef: {{name: app}}
  filterTags: {{pattern: '^main-[a-f0-9]+-(?P<ts>[0-9]+)$', extract: '$ts'}}
  policy: {{numerical: {{order: asc}}}}
"""


def test_the_overlays_policies_are_forecast_from_the_registrys_tags(world: World, tmp_path: Path) -> None:
    world.branch_build(f"main-0000000-{PUSHED - 60}", revision=OTHER)
    (tmp_path / "overlay.yaml").write_text(OVERLAY)

    job = world.run("refs/heads/main", overlay=tmp_path / "overlay.yaml")

    assert job.forecast == (
        f"flux-system/app-main (numerical asc): main-0000000-{PUSHED - 60} → main-3f2c1a9-{PUSHED}",
    )
    assert job.warnings == ()


def test_an_unreadable_tag_list_skips_the_forecast_with_a_warning_and_fails_nothing(
    world: World, tmp_path: Path
) -> None:
    world.registry.list_error = PublishError("registry registry.test did not answer in time")
    (tmp_path / "overlay.yaml").write_text(OVERLAY)

    job = world.run("refs/heads/main", overlay=tmp_path / "overlay.yaml")

    assert job.exit_code == 0 and job.forecast == ()
    assert job.warnings == ("overlay preview skipped: registry registry.test did not answer in time",)
    assert len(world.notifier.calls) == 1


def test_the_summary_names_where_each_time_came_from(world: World) -> None:
    """A pull request's tag time is its last update, not a push; `created` is the commit's, read where it was."""
    ctx = GitContext(
        event="pull_request",
        ref="refs/pull/7/merge",
        sha=SHA,
        pr_number=7,
        push_time=PUSHED,
        commit_time=PUSHED - 60,
        push_time_from=context.UPDATED_AT,
        commit_time_from=context.TEST_MERGE,
    )
    job = world.run("refs/pull/7/merge", ctx=ctx)

    text = report.job_summary(job, job.result)
    assert f"Timestamp: `{PUSHED}` (from pull_request.updated_at, the pull request's last update)" in text
    assert f"({context.TEST_MERGE})" in text and "push time" not in text
    assert job.result.labels["org.opencontainers.image.created"] == "2025-11-25T22:32:20Z"

    unknown = world.run("refs/pull/7/merge", ctx=replace(ctx, commit_time=None, commit_time_from=None))
    assert unknown.result.created_from == publish.NO_COMMIT_TIME
    assert any("created: the clock at build time" in line for line in world.log.lines)


FIXTURES = Path(__file__).resolve().parent / "fixtures" / "cosign"  # a cosign v3.1.3 key pair, for tests only
TEST_KEY = Signing((FIXTURES / "cosign.key").read_text(), "test-only: never a real key")
PUBLIC = load_public_key((FIXTURES / "cosign.pub").read_bytes(), "cosign.pub")


def signed_for(world: World, digest: str, version: str) -> bool:
    return any(
        PUBLIC.verifies(layer.payload, layer.signature) and claim_problem(layer.payload, digest, IMAGE, version) is None
        for layer in world.registry.signatures.get(digest, [])
    )


@pytest.mark.parametrize("ref", ["refs/heads/main", "refs/tags/v1.4.2"])
def test_a_signed_image_goes_up_by_digest_and_its_tags_only_after_the_signature(world: World, ref: str) -> None:
    version = f"main-3f2c1a9-{PUSHED}" if ref.startswith("refs/heads/") else "1.4.2"
    seen: list[tuple[str, bool]] = []
    world.registry.on_put = lambda tag: seen.append(
        (tag, signed_for(world, world.registry.manifests[tag].digest, version))
    )

    job = world.run(ref, floating=True, signing=TEST_KEY)

    assert job.exit_code == 0 and job.result is not None
    digest = job.result.digest
    assert world.daemon.pushes == []  # no daemon or BuildKit push: the registry client put it up by digest
    assert world.registry.by_digest[digest].config == job.result.image_id
    assert seen and all(signed for _, signed in seen), seen  # every tag appeared with the signature already there
    assert signed_for(world, digest, job.plan.version) and job.result.as_dict()["signed"] is True
    assert "before any tag named it" in report.job_summary(job, job.result)


def test_work_beside_the_build_waits_until_the_build_runs(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening the signing key and checking the login wait until the build runs (then they go beside it): their
    imports held the interpreter while the job started buildx, 20 ms later than a job without them (issue 18)."""
    from image_tagger.operations import signing

    monkeypatch.setattr(publish, "HOLD_BACK", 60.0)  # a loaded machine's stall must not end the wait early
    opened, checked = threading.Event(), threading.Event()
    open_signer, login, runs = signing.open_signer, world.daemon.login, type(world.daemon)._runs
    monkeypatch.setattr(signing, "open_signer", lambda given: (opened.set(), open_signer(given))[1])
    monkeypatch.setattr(world.daemon, "login", lambda *args: (checked.set(), login(*args))[1])
    ahead: list[bool] = []

    def watched(request: BuildRequest) -> None:
        ahead.append(opened.wait(0.2) or checked.wait(0.01))  # without the wait, both would have run by now
        runs(request)

    monkeypatch.setattr(type(world.daemon), "_runs", staticmethod(watched))
    job = world.run("refs/heads/main", signing=TEST_KEY)

    assert job.exit_code == 0 and ahead == [False]
    assert opened.is_set() and checked.is_set()


def test_a_registry_that_refuses_the_signature_gets_no_tag(world: World) -> None:
    world.registry.signature_error = PublishError("registry registry.test: HTTP 403 from PUT /v2/acme/app/manifests/x")

    job = world.run("refs/tags/v1.4.2", signing=TEST_KEY)

    assert job.exit_code == 1 and job.result is None
    assert world.registry.manifests == {}  # no tag at all
    assert job.failure is not None and "was not signed" in job.failure.message
    assert "no tag was written" in job.failure.message and "by digest only" in job.failure.message


@pytest.mark.parametrize(
    ("signing", "why"),
    [
        (Signing(TEST_KEY.key, "wrong"), "the password does not open this key"),
        (Signing("not a key", "x"), "no ENCRYPTED SIGSTORE PRIVATE KEY block"),
    ],
)
def test_a_key_that_cannot_be_used_is_exit_2_before_anything_is_pushed(
    world: World, signing: Signing, why: str
) -> None:
    """The key is opened beside the build (its scrypt takes tenths of a second): one that cannot be used stops it."""
    with pytest.raises(InputError, match=why):
        world.run("refs/tags/v1.4.2", signing=signing)
    [build] = world.daemon.builds
    assert build.stop is not None and build.stop.is_set()
    assert world.registry.manifests == {} and world.registry.by_digest == {} and world.registry.signatures == {}
    assert world.log.lines == []  # bad input is its one line: the log held back meanwhile is never shown


def test_the_held_log_shows_its_lines_and_groups_in_order_once_released() -> None:
    kept = KeptLog()
    held = HeldLog(kept)
    held.info("plan")
    with held.group("Build"):
        held.info("step 1")
        assert kept.lines == []
        held.release()  # from the key's thread, in the middle of the build's group
        held.info("step 2")
    held.info("pushed")
    assert kept.lines == ["plan", "== Build", "step 1", "step 2", "pushed"]


def test_a_signed_branch_build_checks_the_login_beside_the_build(world: World) -> None:
    world.daemon.login_error = PublishError("login to registry.test as 'ci-bot' failed: unauthorized")

    job = world.run("refs/heads/main", signing=TEST_KEY)

    assert job.exit_code == 1 and job.failure is not None and "login to registry.test" in job.failure.message
    [build] = world.daemon.builds
    assert build.stop is not None and build.stop.is_set()  # the refused login stopped the build
    assert world.registry.by_digest == {} and world.registry.manifests == {} and world.registry.signatures == {}


def test_a_promoted_release_is_signed_for_its_own_version_before_its_tag(world: World) -> None:
    staging = world.branch_build()
    signed_before: list[bool] = []
    world.registry.on_put = lambda tag: signed_before.append(signed_for(world, staging.digest, "1.4.2"))

    job = world.run("refs/tags/v1.4.2", signing=TEST_KEY)

    assert states(job) == {"1.4.2": TagState.PROMOTED} and world.daemon.builds == []
    assert signed_before == [True]
    assert not signed_for(world, staging.digest, "1.4.3")  # bound to the version: not a signature for any tag


def test_a_rerun_of_a_signed_release_adds_no_second_signature(world: World) -> None:
    first = world.run("refs/tags/v1.4.2", signing=TEST_KEY)
    again = world.run("refs/tags/v1.4.2", signing=TEST_KEY)

    assert states(again) == {"1.4.2": TagState.ALREADY_PUBLISHED}
    assert len(world.registry.signatures[first.result.digest]) == 1


def test_a_signed_multi_platform_image_with_provenance_goes_up_by_digest(world: World) -> None:
    """The build is asked for every platform and the provenance, and to leave the image for the upload (on the
    containerd store: the index BuildKit exports); the digest uploaded, the index's, is the one signed."""
    world.daemon.containerd_store = True
    platforms = ("linux/amd64", "linux/arm64")

    job = world.run("refs/tags/v1.4.2", signing=TEST_KEY, platforms=platforms)

    assert job.exit_code == 0 and job.result is not None
    [build] = world.daemon.builds
    assert build.by_digest and build.options.platforms == platforms and build.provenance == "min"
    assert world.daemon.pushes == [] and job.result.digest in world.registry.by_digest
    assert signed_for(world, job.result.digest, "1.4.2")
    assert job.result.provenance.startswith("SLSA provenance, mode=min")


@pytest.mark.parametrize(
    ("private", "store", "mode", "words"),
    [
        (False, True, "max", "mode=max (a public repository)"),
        (True, True, "min", "mode=min (a private repository"),
        (None, True, "min", "one the event does not describe"),
        (False, False, None, "classic image store cannot hold attestations"),
    ],
)
def test_provenance_follows_the_repository_s_visibility_and_the_daemon(
    world: World, private: bool | None, store: bool, mode: str | None, words: str
) -> None:
    world.daemon.containerd_store = store
    ctx = GitContext(event="push", ref="refs/heads/main", sha=SHA, push_time=PUSHED, private=private)

    job = world.run("refs/heads/main", ctx=ctx)

    assert job.exit_code == 0 and world.daemon.builds[0].provenance == mode
    assert words in job.result.as_dict()["provenance"]
    assert f"Provenance: {job.result.provenance}" in report.job_summary(job, job.result)


@pytest.mark.parametrize(("store", "mode", "words"), [(True, "min", "SLSA provenance"), (False, None, "classic image")])
def test_a_signed_image_carries_provenance_where_the_store_holds_it(
    world: World, store: bool, mode: str | None, words: str
) -> None:
    world.daemon.containerd_store = store
    signed = world.run("refs/tags/v1.4.2", signing=TEST_KEY, release=ReleaseOptions(promote=PromoteMode.NEVER))

    assert [build.provenance for build in world.daemon.builds] == [mode]
    assert words in signed.result.provenance


def test_no_provenance_is_asked_of_the_legacy_builder(world: World) -> None:
    world.daemon.containerd_store = True
    legacy = world.run("refs/heads/main", builder=Builder.LEGACY)

    assert [build.provenance for build in world.daemon.builds] == [None]
    assert "legacy builder makes no attestations" in legacy.result.provenance
