"""The pull-request action's inputs, declared once: pull-request/action.yml's `inputs:` and the input table of
pull-request/README.md are generated from this table (`python tools/gen_inputs.py`); `action` parses and masks
by it."""

from __future__ import annotations

from image_tagger.model.inputspec import InputSpec, Kind, Mask

PULL_REQUEST_INPUTS = (
    InputSpec(
        "github-token",
        "Token for the GitHub API; needs contents: read and pull-requests: write. Default: the job's token.",
        "needs `contents: read` and `pull-requests: write`",
        default="${{ github.token }}",
        secret=Mask.LINES,
    ),
    InputSpec(
        "path",
        "The automation's update path (spec.update.path) in the checkout, e.g. apps/production.",
        "the automation's update path in the checkout; only markers under it are compared (so a staging overlay "
        "on the base branch, moving on its own, is never reported as going back)",
        required=True,
    ),
    InputSpec(
        "base",
        "Branch the pull request merges into. Empty: the repository's default branch (from the event).",
        "the branch the pull request merges into: the automation's checkout branch",
        empty="the repository's default branch (from the push event)",
    ),
    InputSpec(
        "branch",
        "The automation's push branch. Empty: the branch this workflow run was pushed to.",
        "the automation's push branch",
        empty="the pushed branch",
    ),
    InputSpec(
        "labels",
        "Labels to add, comma- or newline-separated (existing labels are kept).",
        "comma- or newline-separated; added to the pull request, labels people added stay",
        kind=Kind.LINES,
    ),
    InputSpec(
        "registry",
        "Registry host the credentials are for (docker.io, ghcr.io, ...); others are read anonymously.",
        "the registry of the account below; images of other registries are read anonymously, so the account is "
        "never sent elsewhere",
        default="docker.io",
    ),
    InputSpec(
        "registry-username",
        "Registry user for reading digests and labels of private images. Empty: anonymous.",
        "the account's user",
    ),
    InputSpec(
        "registry-password",
        "Registry password or token (masked first).",
        "the account's password or token; masked first",
        secret=Mask.LOGIN,
        user="registry-username",
    ),
    InputSpec(
        "verify-key",
        "Optional: the release signer's public key (PEM, e.g. cosign.pub). Every image the automation changed must "
        "carry a cosign signature by it for its version, or the step fails after the pull request says why.",
        "a public key (PEM, e.g. `cosign.pub`): every changed image must carry a cosign signature by it, for that "
        "very digest, version and repository (as `image-tagger verify`); otherwise the pull request says why and the "
        "step fails (exit 1), so a required check keeps it from merging. Empty: no check",
        kind=Kind.LINES,
    ),
    InputSpec(
        "verify-certificate-identity",
        "Optional, keyless: the identity every changed image's Fulcio certificate must name, e.g. "
        "https://github.com/OWNER/REPO/.github/workflows/release.yml@refs/tags/v1.4.2. Needs the OIDC issuer.",
        "keyless instead of `verify-key`: every changed image must carry a cosign keyless signature for its digest, "
        "version and repository whose certificate names this identity (a SAN URI or email) and "
        "`verify-certificate-oidc-issuer`, chains to Fulcio's root and is logged in Rekor (as `image-tagger verify "
        "--certificate-identity`); otherwise the pull request says why and the step fails. Empty: no keyless check",
    ),
    InputSpec(
        "verify-certificate-identity-regexp",
        "Optional, keyless: a Go regular expression the certificate's identity must match, instead of an exact "
        "identity, e.g. ^https://github.com/OWNER/REPO/.github/workflows/release.yml@refs/tags/v",
        "as `verify-certificate-identity`, matched as cosign's `--certificate-identity-regexp` (Go syntax, "
        "unanchored): the release workflow of every tag, "
        "`^https://github\\.com/OWNER/REPO/\\.github/workflows/release\\.yml@refs/tags/v`",
    ),
    InputSpec(
        "verify-certificate-oidc-issuer",
        "The OIDC issuer keyless certificates must name, e.g. https://token.actions.githubusercontent.com.",
        "the issuer the certificate must name (Fulcio's issuer extension), with either identity input",
    ),
    InputSpec(
        "verify-trusted-root",
        "Optional: a Sigstore trusted_root.json (its text) to check keyless signatures against. Empty: the "
        "public-good Fulcio and Rekor, pinned in the action.",
        "the text of a `trusted_root.json` (a private Sigstore's Fulcio chains and Rekor keys) for the keyless "
        "check; empty: Sigstore's public-good instance, pinned in the action (see **Signed releases** in the "
        "main README)",
        empty="the pinned public-good root",
        kind=Kind.LINES,
    ),
    InputSpec(
        "timeout-seconds",
        "Deadline for all GitHub and registry calls of the run together (connect, answers, retries), 1-3600.",
        "one deadline, 1 to 3600 s, for every GitHub and registry call of the run together (connect, answer, "
        "retries and their waits); each GitHub call also has 30 s, each answer at most 32 MiB; past it: one "
        "`::error` line, exit 1",
        default="300",
    ),
)
