"""`image-tagger`: the action's naming, build and push for local use, and Flux's decisions offline.

Exit codes: 0 done, 1 the job or the evaluation failed, 2 bad input (one line on stderr, nothing
on stdout). Everything printed passes one redaction of the run's credentials and secrets, with
control characters escaped and no line able to start a workflow command (`redact.guarded`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from image_tagger.edges import context
from image_tagger.edges.jobports import real_edges
from image_tagger.entry import leave
from image_tagger.fluxrules.files import read_named_file
from image_tagger.model.errors import InputError, PublishError, exit_code
from image_tagger.model.git import GitContext
from image_tagger.model.imagename import ImageName
from image_tagger.model.inputspec import InputSpec, Kind
from image_tagger.operations import publish
from image_tagger.rules import inputs, report
from image_tagger.rules.naming import plan_tags
from image_tagger.rules.publishinputs import ID_TOKEN_REQUEST_ENV, PASSWORD_ENV, PUBLISH_INPUTS
from image_tagger.rules.redact import Redactor, guarded, one_line

if TYPE_CHECKING:  # imported by the commands that use them (see WORLD_FAILURES)
    from image_tagger.edges.keylessverify import KeylessCheck
    from image_tagger.edges.registry.tags import RegistryTags
    from image_tagger.edges.signer import PublicKey
    from image_tagger.fluxrules.automation import ImageRepo
    from image_tagger.fluxrules.imageref import ImageRef

# Other spellings of an input's flag that still work.
_ALIASES = {"build-args": ("--build-arg",)}
# Failures of the world around a run (the daemon, a registry, files, a child process): exit 1 like our own. The
# Docker SDK's and requests' are named by module: `publish` starts its build without importing them (issue 17),
# and an exception of a module never imported was never raised. For the same reason Flux's rules, the YAML reader
# and the registry's tag lister are imported by the commands that use them.
WORLD_FAILURES = (OSError, subprocess.SubprocessError)
WORLD_FAILURE_MODULES = {"docker.errors": "DockerException", "requests": "RequestException"}


def is_world_failure(err: BaseException) -> bool:
    loaded = [getattr(sys.modules[name], kind) for name, kind in WORLD_FAILURE_MODULES.items() if name in sys.modules]
    return isinstance(err, (*WORLD_FAILURES, *loaded))


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise InputError(message)


class StderrLog:
    """Build and push progress for people: on stderr, so stdout stays machine-readable."""

    def info(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    @contextmanager
    def group(self, title: str) -> Iterator[None]:
        print(f"== {title}", file=sys.stderr, flush=True)
        yield


def _git_arguments(p: argparse.ArgumentParser) -> None:
    """What the GITHUB_* environment gives the action: given here, or read from the checkout."""
    p.add_argument("--ref", help="git ref: refs/tags/v1.4.2, refs/heads/main, refs/pull/7/merge")
    p.add_argument("--sha", help="commit id (hex)")
    p.add_argument("--event", help="GitHub event name: push, pull_request, workflow_dispatch, ...")
    p.add_argument("--pr-number", type=_int_arg("--pr-number"), help="pull request number")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _input_arguments(p: argparse.ArgumentParser, specs: Iterable[InputSpec]) -> None:
    """`--<input>` for each declared input that is no secret, with action.yml's description as its help; the
    values stay text, parsed by `inputs` as the action's are. A multi-line input is a repeatable flag (one line
    each); `--flag` alone means true, and `--flag false` is accepted too."""
    for spec in specs:
        flags = (f"--{spec.name}", *_ALIASES.get(spec.name, ()))
        text = spec.description + (f" (default: {spec.default})" if spec.default else "")
        text = text.replace("%", "%%")  # argparse formats help with %
        if spec.kind is Kind.BOOL:
            p.add_argument(*flags, nargs="?", const="true", default="", metavar="true|false", help=text)
        elif spec.kind is Kind.LINES:
            p.add_argument(*flags, action="append", default=[], help=text + " Repeatable: one line each.")
        else:
            metavar = "|".join(spec.choices) or None
            p.add_argument(*flags, required=spec.required, default="", metavar=metavar, help=text)


def _secret_inputs_epilog() -> str:
    """How `publish` takes the secret inputs: never as a flag's value, which other users of the machine can read."""
    lines = ["secret inputs (never a flag's value):"]
    for spec in (spec for spec in PUBLISH_INPUTS if spec.secret is not None):
        text = f"{spec.name}: from {spec.cli}. {spec.description}"
        lines.append(textwrap.fill(text, 100, initial_indent="  ", subsequent_indent="    ", break_on_hyphens=False))
    return "\n".join(lines)


def _int_arg(name: str):
    def parse(text: str) -> int:
        if not re.fullmatch(r"[0-9]{1,9}", text):
            raise argparse.ArgumentTypeError(f"{name} {text!r} is not accepted; accepted: a positive number")
        return int(text)

    return parse


def _raw_inputs(args: argparse.Namespace) -> dict[str, str]:
    """The flags as the action's raw inputs: `--sha-length` is `sha-length`, a repeated flag's values are lines."""
    raw = {}
    for spec in PUBLISH_INPUTS:
        value = getattr(args, spec.name.replace("-", "_"), None)
        if value is not None:
            raw[spec.name] = "\n".join(value) if isinstance(value, list) else value
    return raw


def _env_secrets() -> dict[str, str]:
    """The secret inputs the environment holds (IMAGE_TAGGER_PASSWORD, ...), under their input names."""
    return {spec.name: os.environ.get(spec.env, "") for spec in PUBLISH_INPUTS if spec.env}


def _context(args: argparse.Namespace, checkout: Path | None) -> GitContext:
    overrides = {"ref": args.ref, "sha": args.sha, "event": args.event, "pr_number": args.pr_number}
    return context.resolve(overrides, checkout=checkout)


def cmd_tags(args: argparse.Namespace) -> int:
    image, naming = inputs.parse_naming(_raw_inputs(args))
    plan = plan_tags(_context(args, None), image, naming, now=int(time.time()))
    for note in plan.notes:
        print(note, file=sys.stderr)
    print(json.dumps(plan.as_dict()) if args.json else "\n".join(plan.refs))
    return 0


def _read_secrets(path: str | None) -> str:
    return read_named_file(Path(path), f"--secrets-file {path}") if path else ""


def cmd_publish(args: argparse.Namespace) -> int:
    workspace = Path(args.workspace)
    if not workspace.is_dir():
        raise InputError(f"--workspace {args.workspace!r} is not a directory; accepted: the checkout to build")
    raw = _raw_inputs(args) | _env_secrets() | {"secrets": _read_secrets(args.secrets_file)}
    if args.signing_key:
        raw["signing-key"] = read_named_file(Path(args.signing_key), f"--signing-key {args.signing_key}")
    if args.password_stdin:
        raw["password"] = sys.stdin.readline().rstrip("\n")
    args.redactor.add_inputs(PUBLISH_INPUTS, raw)
    given = inputs.parse(raw, workspace)
    if given.signing is not None and args.signing_key:  # errors about the key name the file it came from
        given = replace(given, signing=replace(given.signing, source=f"--signing-key {args.signing_key}"))
    log = StderrLog()
    job = publish.run(given, _context(args, workspace), real_edges(), log)
    for note in job.plan.notes:
        print(note, file=sys.stderr)
    if job.result is not None:  # what did reach the registry is reported, also when a later step failed
        log.info(report.heading(job.result))
        for line in (*job.warnings, *(f"flux: {line}" for line in job.forecast)):
            log.info(line)
        for notification in job.notifications:
            log.info(notification.detail)
        if args.json:
            print(report.outputs(job.result, job.notifications)["json"])
        else:
            print(report.job_summary(job, job.result), end="")
    if job.failure is not None:
        raise PublishError(job.failure.message)
    return 0


def _policy_inputs(path: Path) -> tuple[dict[str, Any], ImageRepo | None]:
    """The ImagePolicy spec and the ImageRepository (an automation.ImageRepo) when the file also holds it."""
    from image_tagger.edges import manifests
    from image_tagger.fluxrules import automation

    docs = manifests.load_file(path, f"--policy {path}")
    spec = next((d.get("spec") for d in docs if d.get("kind") == "ImagePolicy"), None)
    if not isinstance(spec, dict) or "policy" not in spec:
        raise InputError(f"--policy {path}: no ImagePolicy with spec.policy; accepted: an ImagePolicy manifest")
    repo = next((automation.read_repository(d) for d in docs if d.get("kind") == "ImageRepository"), None)
    return spec, repo


@contextmanager
def _registry(args: argparse.Namespace) -> Iterator[RegistryTags]:
    """The registry edge (tags, and a tag's digest as Flux reads it); the logins it read are redacted from then on,
    errors included."""
    from image_tagger.edges.registry.tags import RegistryTags

    source = RegistryTags()
    try:
        yield source
    finally:
        for login in source.logins:
            args.redactor.add_login(login.username, login.password)


def cmd_select(args: argparse.Namespace) -> int:
    from image_tagger.fluxrules import policy
    from image_tagger.fluxrules.imageref import ImageRef

    spec, repo = _policy_inputs(Path(args.policy))
    reflection = policy.parse_reflection(spec)
    lines = read_named_file(Path(args.tags), f"--tags {args.tags}").splitlines()
    exclusions = args.exclude or (repo.exclusions or None if repo else None)
    tags = policy.scan_tags([t.strip() for t in lines if t.strip()], exclusions)
    image = args.image or (repo.image if repo else "")
    try:
        tag = policy.select_tag(spec, tags)
        digest = ""
        if reflection != policy.NEVER and image:
            with _registry(args) as source:  # no status offline: looked up, as on the policy's first evaluation
                digest = policy.latest_ref(
                    reflection, ImageRef(image, tag), None, lambda: source.digest_of(image, tag)
                ).digest
        elif reflection != policy.NEVER:
            print(
                f"note: the policy reflects digests ({reflection}); with --image the digest is read too",
                file=sys.stderr,
            )
    except policy.PolicyFailure as err:
        print(f"image-tagger: {err}", file=sys.stderr)
        return 1
    print(f"{tag}@{digest}" if digest else tag)
    return 0


def _with_digests(args: argparse.Namespace, root: Path, refs: dict[str, ImageRef]) -> dict[str, ImageRef]:
    """`--digest-reflection`: each assignment without a digest gets the one Flux would record. IfNotPresent keeps
    the digest the files' full-reference markers already hold for that name and tag (offline, they stand in for
    the ImagePolicy's status); otherwise, and with Always, the registry's."""
    from image_tagger.fluxrules import policy, setters

    reflection = args.digest_reflection
    recorded = setters.recorded_digests(root, refs) if reflection == policy.IF_NOT_PRESENT else {}
    found = {}
    with _registry(args) as source:
        for key, ref in refs.items():
            previous = replace(ref, digest=recorded[key]) if key in recorded else None
            lookup = lambda ref=ref: source.digest_of(ref.name, ref.tag)  # noqa: E731
            found[key] = ref if ref.digest else policy.latest_ref(reflection, ref, previous, lookup)
    return found


def cmd_update(args: argparse.Namespace) -> int:
    from image_tagger.fluxrules import imageref, setters

    root = Path(args.path)
    if not root.is_dir():
        raise InputError(f"PATH {root} is not a directory; accepted: the folder to update")
    refs = dict(imageref.parse_policy_assignment(text) for text in args.policy)
    if args.digest_reflection:
        refs = _with_digests(args, root, refs)
    notes: list[str] = []
    updates = setters.plan_updates(root, refs, notes)
    if not args.dry_run:
        setters.write_updates(root, updates)  # all files or none; a failure is one line, exit 1, stdout empty
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    for update in updates:
        if update.reformat:
            print(
                f"note: Flux would also reformat {update.path}: {'; '.join(update.reformat)}",
                file=sys.stderr,
            )
        print(update.diff() if args.dry_run else update.path, end="" if args.dry_run else "\n")
    return 0


def _directory(flag: str, value: str, accepted: str) -> Path:
    """A folder named on the command line; anything else (missing, a file, empty) is refused, never ignored."""
    if not value or not Path(value).is_dir():
        raise InputError(f"{flag} {value!r} is not a directory; accepted: {accepted}")
    return Path(value)


def cmd_preview(args: argparse.Namespace) -> int:
    from image_tagger.edges import manifests
    from image_tagger.fluxrules import automation

    config_repo = None
    if args.config_repo is not None:
        config_repo = _directory("--config-repo", args.config_repo, "a checkout of the repository Flux commits to")
    objects = manifests.load_objects(Path(args.overlay))
    targets = automation.find_targets(objects)
    if not targets:
        raise InputError(f"overlay {args.overlay} has no ImagePolicy; accepted: an overlay with Flux image objects")
    automations = automation.find_automations(objects) if config_repo else []  # bad input first, then the registry
    with _registry(args) as source:
        selected = automation.select(targets, source)
        # IfNotPresent keeps the digest the config repository's manifests already hold for the selected tag.
        recorded = automation.recorded_digests(config_repo, automations, selected) if config_repo else {}
        predictions = [automation.reflect(p, source, recorded) for p in selected]
    commits = automation.plan_commits(config_repo, automations, predictions) if config_repo else []
    if args.json:
        print(json.dumps([p.as_dict() for p in predictions]))
        return 0
    for p in predictions:  # tag names are the registry's: one line each, control characters escaped
        line = f"{p.policy}: {p.ref}" if p.ref else f"{p.policy}: nothing selected ({p.error})"
        print(one_line(line))
    for commit in commits:
        auto, files = commit.automation, commit.updates
        title = f"automation {auto.key} (path {auto.path})"
        print(f"{title}: {'would commit ' + str(len(files)) + ' file(s)' if files else 'nothing to commit'}")
        if files:
            print("".join(f"    {line}\n" for line in commit.message.splitlines()), end="")
        for update in files:
            if update.reformat:
                print(f"note: Flux would also reformat {update.path}: {'; '.join(update.reformat)}")
            print(update.diff(), end="")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from image_tagger.operations import rollback  # issue 10: exclude a bad release in the overlay (or --undo it

    print(rollback.run(Path(args.overlay), args.tag, args.image, args.undo).line)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Exit 0 only for a tag whose digest carries a signature by the key (or the keyless identity), for that version
    and repository."""
    from image_tagger.edges.registry.credentials import credentials_for
    from image_tagger.edges.registry.session import RegistrySession
    from image_tagger.operations.verify import verify

    signer = _verify_signer(args)

    def session_for(image: ImageName) -> RegistrySession:
        login = credentials_for(image.registry)  # the Docker config's, as `docker pull` would use
        args.redactor.add_login(login.username, login.password)
        return RegistrySession(image, login)

    verdict = verify(args.image, signer, session_for)
    print(one_line(verdict.line), file=sys.stdout if verdict.ok else sys.stderr)
    return 0 if verdict.ok else 1


KEYLESS_FLAGS = ("--certificate-identity", "--certificate-identity-regexp", "--certificate-oidc-issuer")


def _verify_signer(args: argparse.Namespace) -> PublicKey | KeylessCheck:
    """--key's public key, or the keyless identity under Sigstore's trust root (--trusted-root's, else the pinned
    public-good one); one of the two, exit 2 otherwise."""
    from image_tagger.edges import keylessverify
    from image_tagger.edges.signer import load_public_key

    flags = (args.certificate_identity, args.certificate_identity_regexp, args.certificate_oidc_issuer)
    keyless = any(value is not None for value in flags)
    if args.key is not None and keyless:
        raise InputError(
            "--key and --certificate-identity/--certificate-oidc-issuer are both set; accepted: one of them"
        )
    if args.trusted_root is not None and not keyless:
        raise InputError("--trusted-root is for keyless verification; accepted with --certificate-identity")
    if args.key is not None:
        return load_public_key(read_named_file(Path(args.key), f"--key {args.key}").encode(), args.key)
    if not keyless:
        raise InputError(
            "verify needs --key PUB (the signer's public key, e.g. cosign.pub), or --certificate-identity ID and "
            "--certificate-oidc-issuer ISSUER (keyless)"
        )
    root = None
    if args.trusted_root is not None:
        root = (
            read_named_file(Path(args.trusted_root), f"--trusted-root {args.trusted_root}").encode(),
            args.trusted_root,
        )
    return keylessverify.keyless_check(flags, KEYLESS_FLAGS, root)


def cmd_demo(args: argparse.Namespace) -> int:
    from image_tagger.demo import DemoError, loop  # not in the action's image: imported only when asked for

    source = None
    if args.source is not None:
        source = _directory("--source", args.source, "a flux-ci-cd checkout (flux/ and kustomize/)")
    cluster_bin = None
    if args.cluster_bin is not None:
        cluster_bin = _directory("--cluster-bin", args.cluster_bin, "cluster/build's bin folder (./dev cluster build)")
    try:
        return loop.main(source, cluster_bin)
    except DemoError as err:
        print(f"image-tagger: demo failed: {err}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="image-tagger", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("tags", help="print the image references the naming contract gives a git ref")
    _input_arguments(p, (spec for spec in PUBLISH_INPUTS if spec.naming and spec.secret is None))
    _git_arguments(p)
    p.set_defaults(run=cmd_tags)

    p = sub.add_parser(
        "publish",
        help="compute tags, build and push from a local checkout",
        description="The action's job from a local checkout: its inputs as flags of the same names.",
        epilog=_secret_inputs_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _input_arguments(p, (spec for spec in PUBLISH_INPUTS if spec.secret is None))
    _git_arguments(p)
    p.add_argument("--workspace", default=".", help="the git checkout; input paths are relative to it (default .)")
    p.add_argument("--secrets-file", help="the secrets input: a file of id=value lines")
    p.add_argument("--signing-key", metavar="FILE", help="the signing-key input: a cosign.key file")
    p.add_argument("--password-stdin", action="store_true", help=f"read the password from stdin, not {PASSWORD_ENV}")
    p.set_defaults(run=cmd_publish)

    p = sub.add_parser("select", help="the tag an ImagePolicy selects from a list of tags, as Flux does")
    p.add_argument("--policy", required=True, help="ImagePolicy manifest (YAML)")
    p.add_argument("--tags", required=True, help="file with one tag per line")
    p.add_argument("--exclude", action="append", help="exclusion regex (replaces the default ^.*\\.sig$)")
    p.add_argument(
        "--image",
        help="the ImageRepository's spec.image (default: the one in --policy's file), for a policy that reflects "
        "digests: its tag's digest is read from the registry and printed as TAG@DIGEST",
    )
    p.set_defaults(run=cmd_select)

    p = sub.add_parser("update", help="apply Flux setter markers under PATH, as image automation does")
    p.add_argument("path", help="folder to update (the automation's update path)")
    p.add_argument("--policy", action="append", required=True, help="NS:NAME=IMAGE:TAG[@DIGEST], repeatable")
    p.add_argument("--dry-run", action="store_true", help="print a unified diff, write nothing")
    p.add_argument(
        "--digest-reflection",
        choices=("IfNotPresent", "Always"),
        help="the policies' digestReflectionPolicy: an assignment without @DIGEST gets the registry's digest of its "
        "tag (IfNotPresent: the one the files already hold for that image and tag, if any)",
    )
    p.set_defaults(run=cmd_update)

    p = sub.add_parser("preview", help="what Flux will select for an overlay's policies, from the real registry")
    p.add_argument("overlay", help="kustomize overlay, folder of manifests, or a rendered YAML file")
    p.add_argument("--config-repo", help="config repo checkout: also show what the image automation commits")
    p.add_argument("--json", action="store_true", help="print a JSON list of {policy, image, selected, digest}")
    p.set_defaults(run=cmd_preview)

    p = sub.add_parser("rollback", help="roll back: the overlay's ImageRepository excludes TAG (--undo takes it back)")
    p.add_argument("overlay", help="kustomize overlay (folder) whose build holds the ImageRepository")
    p.add_argument("tag", help="the bad tag, e.g. 1.2.0 or main-3f2c1a9-1764110000")
    p.add_argument("--image", help="the ImageRepository (name, namespace/name or image) when the overlay has several")
    p.add_argument("--undo", action="store_true", help="remove the exclusion of TAG again")
    p.set_defaults(run=cmd_rollback)

    p = sub.add_parser(
        "verify", help="is IMAGE:TAG signed by --key (or a keyless identity) for that very version and repository"
    )
    p.add_argument("image", metavar="IMAGE:TAG", help="the release to check, e.g. ghcr.io/acme/app:1.4.2")
    p.add_argument("--key", help="the signer's public key (PEM), e.g. cosign.pub")
    p.add_argument(
        "--certificate-identity",
        help="keyless: the signer's identity in its Fulcio certificate, e.g. "
        "https://github.com/OWNER/REPO/.github/workflows/release.yml@refs/tags/v1.4.2",
    )
    p.add_argument("--certificate-identity-regexp", help="keyless: a Go regexp the identity must match (as cosign's)")
    p.add_argument(
        "--certificate-oidc-issuer", help="keyless: the OIDC issuer, e.g. https://token.actions.githubusercontent.com"
    )
    p.add_argument(
        "--trusted-root",
        metavar="FILE",
        help="keyless: a Sigstore trusted_root.json to trust instead of the pinned public-good Fulcio and Rekor",
    )
    p.set_defaults(run=cmd_verify)

    p = sub.add_parser("demo", help="the whole loop on one machine: tag -> image -> manifest commit -> running app")
    p.add_argument(
        "--source", help="a flux-ci-cd checkout whose flux/ and kustomize/ to serve (default: the packaged copy)"
    )
    p.add_argument(
        "--cluster-bin",
        help="run production and staging as two real clusters (etcd, kube-apiserver, Flux's controllers) from this "
        "folder, the last line of `./dev cluster build`; without it the clusters are simulated",
    )
    p.set_defaults(run=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    redactor = Redactor()
    redactor.add_inputs(PUBLISH_INPUTS, _env_secrets())
    redactor.add_secret(os.environ.get(ID_TOKEN_REQUEST_ENV, ""))
    with guarded(redactor, "stdout", "stderr"):
        return _main(argv, redactor)


def console() -> NoReturn:
    """The `image-tagger` command (main() is the same for callers in a process that goes on)."""
    leave(main())


def _main(argv: Sequence[str] | None, redactor: Redactor) -> int:
    try:
        args = build_parser().parse_args(argv)
        args.redactor = redactor  # commands add the secrets they read (stdin password, secrets file, logins)
        return args.run(args)
    except Exception as err:
        code = exit_code(err) or (1 if is_world_failure(err) else None)
        if code is None:
            raise  # not an error kind of ours: a bug, shown as one
        print(f"image-tagger: {'error' if code == 2 else 'failed'}: {err}", file=sys.stderr)
        return code
