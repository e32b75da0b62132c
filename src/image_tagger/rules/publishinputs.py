"""The publish action's inputs, declared once: action.yml's `inputs:` and the README's input table are generated
from this table (`python tools/gen_inputs.py`), and `rules.inputs`, the masking and `image-tagger publish` read it.
"""

from __future__ import annotations

from image_tagger.model.inputspec import InputSpec, Kind, Mask
from image_tagger.model.states import Builder, PromoteMode, ProvenanceMode, PushMode

PASSWORD_ENV = "IMAGE_TAGGER_PASSWORD"
RECEIVER_ENV = "IMAGE_TAGGER_RECEIVER_SECRET"
SIGNING_PASSWORD_ENV = "COSIGN_PASSWORD"  # cosign's own name for it
# The runner's bearer for OIDC tokens (set with `permissions: id-token: write`): redacted like the inputs' secrets.
ID_TOKEN_REQUEST_ENV = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
# cosign v3.1.3's own image (a multi-platform index), pinned by digest: keyless signing runs it, and only then.
COSIGN_IMAGE = (
    "ghcr.io/sigstore/cosign/cosign:v3.1.3@sha256:9e5c2f2edc34351160407ca3416c61855bdf9403c3c5936e0f0be7fc261611b8"
)

PUBLISH_INPUTS = (
    InputSpec(
        "image",
        "Image repository without tag, e.g. acme/app (Docker Hub) or ghcr.io/acme/app.",
        "repository without tag: `acme/app`, `ghcr.io/acme/app`",
        required=True,
        naming=True,
    ),
    InputSpec(
        "registry",
        "Registry host[:port] for images given without one (docker.io, ghcr.io, 127.0.0.1:5000).",
        "registry for names without one, `host[:port]` (`127.0.0.1:5000`, `ghcr.io`; no scheme: loopback is reached "
        "over http, others over https)",
        default="docker.io",
        naming=True,
    ),
    InputSpec(
        "username",
        "Registry user name. Empty: no login (the push must then be allowed anonymously).",
        "the registry login's user: checked by a daemon login (beside a BuildKit build that pushes, which it stops "
        "when refused) and handed to buildx through a credential helper; kept in memory, never written to disk",
    ),
    InputSpec(
        "password",
        "Registry password or access token. Masked before anything else runs.",
        "the registry login's password or token; masked first",
        secret=Mask.LOGIN,
        user="username",
        cli=f"{PASSWORD_ENV} or --password-stdin",
        env=PASSWORD_ENV,
    ),
    InputSpec(
        "major-version",
        "Refuse a release whose major version differs (e.g. 1). Empty: any major.",
        "refuse releases of another major",
        naming=True,
    ),
    InputSpec(
        "context",
        "Build context, relative to the workspace.",
        "build context, relative to the workspace (refused when it leads out of it)",
        default=".",
    ),
    InputSpec(
        "file",
        "Dockerfile path relative to the workspace. Empty: <context>/Dockerfile.",
        "the Dockerfile, relative to the workspace (refused when it leads out of it)",
        empty="`<context>/Dockerfile`",
    ),
    InputSpec(
        "push",
        "auto (push except for pull requests), true or false.",
        "`auto` pushes except for pull requests; `true`; `false`",
        default=PushMode.AUTO,
        kind=Kind.CHOICE,
        choices=tuple(PushMode),
        naming=True,
    ),
    InputSpec(
        "build-args",
        "Build arguments, one KEY=VALUE per line.",
        "`KEY=VALUE` per line (not for secrets: build arguments stay in the image history)",
        kind=Kind.LINES,
    ),
    InputSpec(
        "secrets",
        "Build secrets, one id=value per line, for RUN --mount=type=secret,id=<id> (as docker/build-push-action). "
        "Masked before anything runs; never stored in the image, the logs or the outputs.",
        "`id=value` per line, for `RUN --mount=type=secret,id=<id>`; masked first, never in the image, logs, outputs "
        "or summary",
        kind=Kind.LINES,
        secret=Mask.ID_VALUES,
        cli="--secrets-file FILE (id=value lines)",
    ),
    InputSpec(
        "platforms",
        "Target platforms, comma-separated (linux/amd64,linux/arm64). More than one makes a multi-platform image, "
        "which needs a daemon with the containerd image store. Empty: the daemon's own platform.",
        "e.g. `linux/amd64,linux/arm64` (commas or lines); more than one makes a multi-platform index, which needs "
        "the daemon's containerd image store (refused with that said, otherwise)",
        kind=Kind.LINES,
    ),
    InputSpec(
        "target",
        "Build stage to stop at (multi-stage Dockerfiles). Empty: the last stage.",
        "the build stage to stop at",
    ),
    InputSpec(
        "cache-from",
        "Build cache sources, one per line, e.g. type=registry,ref=acme/app:buildcache.",
        "one spec per line, e.g. `type=registry,ref=acme/app:buildcache`",
        kind=Kind.LINES,
    ),
    InputSpec(
        "cache-to",
        "Build cache exports, one per line, e.g. type=registry,ref=acme/app:buildcache,mode=max (needs the "
        "containerd image store) or type=inline.",
        "one spec per line, e.g. `type=registry,ref=acme/app:buildcache,mode=max`; exporting (other than "
        "`type=inline`) needs the containerd image store",
        kind=Kind.LINES,
    ),
    InputSpec(
        "pull",
        "Always pull the base images, even when the daemon has them: true or false.",
        "always pull the base images",
        default="false",
        kind=Kind.BOOL,
    ),
    InputSpec(
        "no-cache",
        "Build without the build cache: true or false.",
        "build without the cache",
        default="false",
        kind=Kind.BOOL,
    ),
    InputSpec(
        "builder",
        "buildkit (BuildKit through buildx) or legacy (the Engine's legacy builder; only when asked).",
        "`legacy` runs the Engine's legacy builder, only when asked (it refuses `secrets`, `platforms` and caches)",
        default=Builder.BUILDKIT,
        kind=Kind.CHOICE,
        choices=tuple(Builder),
    ),
    InputSpec(
        "provenance",
        "SLSA provenance attestation with the image: auto (max for public repositories, min otherwise), max, min "
        "or false. Needs a daemon with the containerd image store; otherwise the summary says none was attached.",
        "an SLSA provenance attestation in the image's index, as docker/build-push-action makes it: `auto` is "
        "`mode=max` for public repositories (the event's `repository.private`) and `min` for private or unknown "
        "ones. It needs a builder that stores attestations (Engine 28 with the containerd image store; signed images "
        "keep it too); elsewhere and with `builder: legacy`, the summary and `json` say plainly that there is none. "
        "Flux and kubelets pull the same image from the index",
        default=ProvenanceMode.AUTO,
        kind=Kind.CHOICE,
        choices=tuple(ProvenanceMode),
    ),
    InputSpec(
        "overwrite-releases",
        "true to replace a release tag that another commit already holds. false: release tags are immutable "
        '(a re-run of the same commit succeeds as "already published"; another commit is refused, nothing pushed).',
        'release tags are immutable: a re-run of the same commit is "already published" (success, the existing '
        "digest), a release tag that another commit holds is refused (exit 1, both commits named, nothing pushed); "
        "`true` replaces it on purpose",
        default="false",
        kind=Kind.BOOL,
    ),
    InputSpec(
        "promote",
        "auto: a release whose commit already has a branch build in the registry points the release tag at that "
        "very manifest (no build), so production runs what staging ran. never: always build.",
        "a release of a commit that already has a branch build in the registry (`main-<sha>-<ts>` whose revision "
        "label is this commit) points the release tag at that very manifest, a registry-side copy with no build: "
        "production runs the bytes staging ran; `never` always builds",
        default=PromoteMode.AUTO,
        kind=Kind.CHOICE,
        choices=tuple(PromoteMode),
    ),
    InputSpec(
        "tag-prefix",
        "Prefix stripped from git tags before the version is read (monorepos: app/).",
        "stripped from git tags first (monorepos: `app/v1.2.3`)",
        naming=True,
    ),
    InputSpec(
        "sha-length",
        "Number of commit hex digits in branch and pull-request tags.",
        "commit hex digits in branch and PR tags (4-40)",
        default="7",
        naming=True,
    ),
    InputSpec(
        "timestamp",
        "Timestamp source for branch tags: push (event push time), commit (commit time) or build (now).",
        "branch-tag timestamp: `push` (the event's own time, the same in every re-run so a re-run gives the same "
        "tag: `repository.pushed_at` for `push` and `workflow_dispatch`, `pull_request.updated_at` for pull "
        "requests; falls back to the commit time, then the clock, and says which: see **Where the times come "
        "from**), `commit`, `build`, or fixed Unix seconds",
        default="push",
        naming=True,
    ),
    InputSpec(
        "floating-tags",
        "Also tag releases MAJOR.MINOR, MAJOR and latest (never for prereleases): true or false.",
        "also tag `1.4`, `1`, `latest` (never for prereleases); they move to whichever release is pushed last, so "
        "leave them off if you publish hotfixes of older majors",
        naming=True,
        default="false",
        kind=Kind.BOOL,
    ),
    InputSpec(
        "overlay",
        "Optional Flux objects in the workspace: a rendered YAML file (kubectl kustomize OVERLAY > file in an earlier "
        "step) or a folder of plain manifests. The summary then says per ImagePolicy whether this image will be "
        "picked.",
        "Flux objects in the workspace: a rendered file (`kubectl kustomize clusters/production > flux-objects.yaml` "
        "in an earlier step; the action's container has no kustomize) or a folder of plain manifests. Read before "
        "the build (a bad one pushes nothing); the summary then says per ImagePolicy what this image changes, e.g. "
        "`flux-system/app-production (1.x): 1.0.0 → 1.1.0` or `ignored: other major`",
    ),
    InputSpec(
        "flux-receiver-url",
        "Optional: https://<host><status.webhookPath> of a Flux Receiver of type generic-hmac (flux/receiver-hmac), "
        "or one per line, one per cluster (e.g. production and staging). After a successful push the action POSTs "
        "the image, tags and digest to each, signed with flux-receiver-secret, so every cluster rescans the image "
        "at once. A failed notification is a warning naming that receiver's origin, never a failed step; the "
        "others are still notified.",
        "a Flux `generic-hmac` Receiver's `https://<host><status.webhookPath>`, or one per line (one per cluster: "
        "production and staging each run their own notification-controller); blank lines ignored; each is notified "
        "after a successful push, see **Reconcile seconds after a push** below",
        kind=Kind.LINES,
    ),
    InputSpec(
        "flux-receiver-secret",
        "The token of the Receiver's secret (the HMAC key of X-Signature): one token for every URL, or one per line "
        "in the order of the URLs (any other count is refused before the build). Each line is masked before "
        "anything else runs.",
        "the Receivers' token: one for every URL, or one per line in the URLs' order (each line trimmed); another "
        "count is refused, exit 2, before the build; each line is masked first",
        kind=Kind.LINES,
        secret=Mask.LINES,
        cli=RECEIVER_ENV,
        env=RECEIVER_ENV,
    ),
    InputSpec(
        "signing-key",
        "Optional: a cosign private key (the text of cosign.key from cosign generate-key-pair, from a secret). Each "
        "pushed image is then signed by digest, for its version and repository, before its tag appears.",
        "a cosign private key (the text of `cosign.key`, from a secret): each pushed image is signed by digest, in "
        "cosign's format, for its version and repository, and only then tagged; a promoted release is signed for "
        "its own version. A key that cannot be used is refused, exit 2, before anything is pushed (it is opened beside "
        "the build, which it stops); see **Signed releases**",
        secret=Mask.LINES,
        cli="--signing-key FILE",
    ),
    InputSpec(
        "signing-password",
        "The password of signing-key (COSIGN_PASSWORD as cosign knows it). Masked before anything else runs.",
        "the password of `signing-key` (cosign's `COSIGN_PASSWORD`); masked first",
        secret=Mask.LINES,
        cli=SIGNING_PASSWORD_ENV,
        env=SIGNING_PASSWORD_ENV,
    ),
    InputSpec(
        "keyless-signing",
        "Sign each pushed image keyless, with GitHub's OIDC token (the job needs permissions: id-token: write): "
        "a short-lived Sigstore certificate for this workflow, logged in Rekor. true or false; not with signing-key.",
        "sign keyless on GitHub (the job needs `permissions: id-token: write`): cosign, run from `signer-image`, "
        "signs each pushed image by digest with a short-lived Fulcio certificate naming this workflow, logged in "
        "Rekor, for its version and repository, and only then is it tagged; not with `signing-key` (exit 2); see "
        "**Signed releases**",
        default="false",
        kind=Kind.BOOL,
    ),
    InputSpec(
        "signer-image",
        "The cosign image keyless-signing runs (pulled only by jobs that sign keyless). Default: cosign v3.1.3, "
        "pinned by digest.",
        "the cosign image `keyless-signing` runs beside the action, pulled only then (the default: "
        f"`{COSIGN_IMAGE}`); name your own copy of it for runners that cannot reach ghcr.io",
        empty="cosign v3.1.3, pinned",
    ),
)
