"""The BuildKit edge: build through buildx (run standalone as `docker-buildx`) on the Docker daemon.

Why buildx and not the Engine API: secret mounts and private base images need a BuildKit session,
which buildx brings; it is what docker/build-push-action users already rely on. A build that pushes
pushes one tag itself (`--output type=image,name=…,push=true`, what `docker buildx build --push` does:
on the daemon's default builder the daemon uploads it, on the containerd image store BuildKit does), so
no image is loaded and pushed in a second step; a build that does not push is loaded into the daemon
(`--load`). A build whose image goes to the registry by digest (a signed one; the docker driver cannot push by
digest) writes, on the containerd image store, an OCI layout archive (`--output type=oci`): the index with every
platform and the attestations, for the registry client to upload; the classic store exports no OCI layout, so
there it is loaded. This module needs no Docker SDK: only a check that the image store can hold what the options
ask for talks to the daemon, through `containerd_store` handed in.

Nothing secret touches a file or an argument list, and each process holds only what it needs: build
secrets go to buildx alone, as the environment variables its `--secret id=…,env=…` flags name; the
registry credential goes to the credential helper alone, from this process's memory (`credhelper`); the
temporary Docker config only names that helper.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

from image_tagger.edges import credhelper, credrelay
from image_tagger.edges.childenv import DOCKER, child_env, on_path
from image_tagger.edges.daemonwait import TIMEOUT_ENV, daemon_timeout
from image_tagger.model.errors import BuildError, NotPushed, PublishError, PushStalled
from image_tagger.model.imagename import ImageName, plain_http
from image_tagger.model.inputs import BuildOptions
from image_tagger.model.log import Log
from image_tagger.model.registry import RegistryAuth

BUILDX_ENV = "IMAGE_TAGGER_BUILDX"
# Where the docker CLI looks for plugins, for machines with buildx installed only as a plugin.
PLUGIN_DIRS = (
    "~/.docker/cli-plugins",
    "/usr/local/lib/docker/cli-plugins",
    "/usr/local/libexec/docker/cli-plugins",
    "/usr/lib/docker/cli-plugins",
    "/usr/libexec/docker/cli-plugins",
)
STOP_POLL = 0.05  # seconds between looks at the job's stop signal and at a silent push while buildx runs
# Where tempfile.gettempdir looks, in its order, after $TMPDIR, $TEMP and $TMP (then the working directory).
TEMP_ROOTS = ("/tmp", "/var/tmp", "/usr/tmp")


def private_folder() -> Path:
    """A new folder only this user may enter (0700) in the temporary directory tempfile.mkdtemp would use."""
    name = f"image-tagger-buildx-{os.urandom(6).hex()}"
    roots = [os.environ.get(key) for key in ("TMPDIR", "TEMP", "TMP")]
    for root in filter(None, [*roots, *TEMP_ROOTS, os.curdir]):
        try:
            os.mkdir(os.path.join(root, name), 0o700)
        except OSError:
            continue
        return Path(os.path.abspath(root), name)
    raise PublishError(f"no writable temporary folder for the build ({', '.join(TEMP_ROOTS)}, $TMPDIR)")


def remove_folder(folder: Path) -> None:
    """The private folder and what buildx left in its Docker config (shutil imported here: after the build)."""
    import shutil

    shutil.rmtree(folder)


def find_buildx() -> str:
    """The buildx binary: $IMAGE_TAGGER_BUILDX, `docker-buildx` on PATH, or the docker CLI's plugin folders."""
    candidates = [os.environ.get(BUILDX_ENV, ""), on_path("docker-buildx") or ""]
    candidates += [str(Path(d).expanduser() / "docker-buildx") for d in PLUGIN_DIRS]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise PublishError(
        "BuildKit builds need buildx, which was not found (docker-buildx on PATH, a docker CLI plugin folder, "
        f"or ${BUILDX_ENV}); install the docker-buildx package or Docker's buildx plugin, or set builder: legacy"
    )


def check_daemon(options: BuildOptions, containerd_store: Callable[[], bool]) -> None:
    """Refuse up front what the daemon's image store cannot do, naming what would make it work; the daemon is
    asked only when the options need more than the classic store."""
    exported = [spec for spec in options.cache_to if "type=inline" not in spec]
    if len(options.platforms) <= 1 and not exported or containerd_store():
        return
    need = 'the containerd image store (daemon.json: {"features": {"containerd-snapshotter": true}})'
    if len(options.platforms) > 1:
        raise PublishError(
            f"platforms {','.join(options.platforms)} makes a multi-platform image, which needs {need}; "
            "this daemon uses the classic image store; build one platform, or enable it"
        )
    raise PublishError(
        f"cache-to {exported[0]!r} exports build cache, which needs {need}; this daemon uses the classic "
        "image store; use cache-to type=inline, or enable it"
    )


def buildx_argv(
    buildx: str,
    options: BuildOptions,
    refs: Sequence[str],
    labels: Mapping[str, str],
    build_args: Mapping[str, str],
    iidfile: Path,
    push: bool = False,
    provenance: str | None = None,
    layout: Path | None = None,
) -> list[str]:
    """The buildx command line; secret values are referenced by environment variable name only.

    With `push`, BuildKit pushes `refs` (plain http to a loopback registry, as everywhere in image-tagger); with
    `layout`, it writes the image as an OCI layout archive there, named `refs[0]` as a push would name it (the
    provenance's subjects); otherwise the image is loaded into the daemon under `refs`.
    """
    argv = [buildx, "build", "--progress=rawjson", "--iidfile", str(iidfile), "--file", str(options.dockerfile)]
    if layout is not None:
        argv += ["--output", f"type=oci,dest={layout},name={refs[0]}"]
    elif push:
        insecure = ",registry.insecure=true" if all(plain_http(ref.split("/", 1)[0]) for ref in refs) else ""
        argv += ["--output", f"type=image,name={','.join(refs)},push=true{insecure}"]
    else:
        argv.append("--load")
        for ref in refs:
            argv += ["--tag", ref]
    for key, value in labels.items():
        argv += ["--label", f"{key}={value}"]
    for key, value in build_args.items():
        argv += ["--build-arg", f"{key}={value}"]
    for index, secret in enumerate(options.secrets):
        argv += ["--secret", f"id={secret.id},env={secret_env(index)}"]
    if options.platforms:
        argv += ["--platform", ",".join(options.platforms)]
    if options.target:
        argv += ["--target", options.target]
    for spec in options.cache_from:
        argv += ["--cache-from", spec]
    for spec in options.cache_to:
        argv += ["--cache-to", spec]
    if options.pull:
        argv.append("--pull")
    if options.no_cache:
        argv.append("--no-cache")
    if provenance:  # an attestation manifest in the image's index (the image itself is unchanged)
        argv.append(f"--provenance=mode={provenance}")
    return [*argv, str(options.context)]


def secret_env(index: int) -> str:
    return f"IMAGE_TAGGER_SECRET_{index}"


def buildx_env(options: BuildOptions, config: Path) -> dict[str, str]:
    """buildx's environment: the allowlist (childenv), our Docker config and helper, the build secrets.

    No registry credential: the helper reads it from this process (credhelper), so nothing buildx starts
    inherits it. Attestations would turn every image into an index with an extra `unknown/unknown`
    manifest; the classic image store cannot hold them and Flux does not read them.
    """
    values = {
        "DOCKER_CONFIG": str(config),
        "PATH": f"{config / 'bin'}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
        "BUILDX_NO_DEFAULT_ATTESTATIONS": "1",
        "BUILDX_GIT_INFO": "0",  # the revision label is ours; buildx would look for git, absent in the action image
    }
    values |= {secret_env(index): secret.value for index, secret in enumerate(options.secrets)}
    return child_env(*DOCKER, "BUILDX_BUILDER", "BUILDX_CONFIG", values=values)


def write_config(config: Path, image: ImageName, helper: str | None) -> None:
    """A Docker config that routes our registry to our credential helper (`helper`: its script), and the helper;
    neither holds a secret (credhelper)."""
    keys = credhelper.config_keys(image.registry) if helper is not None else ()
    (config / "config.json").write_text(json.dumps({"credHelpers": dict.fromkeys(keys, credrelay.NAME)}))
    if helper is None:
        return
    bin_dir = config / "bin"
    bin_dir.mkdir()
    script = bin_dir / f"docker-credential-{credrelay.NAME}"
    script.write_text(helper)
    script.chmod(0o700)


def _decoded(pipe: IO[bytes]) -> Iterator[str]:
    """The pipe's text as it arrives (read1: whatever is there, not a full buffer), UTF-8 split safely."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    while chunk := pipe.read1(65536):  # type: ignore[attr-defined]
        yield decoder.decode(chunk)
    yield decoder.decode(b"", final=True)


def _watch(proc: subprocess.Popen[bytes], stop: threading.Event | None, stalled: Callable[[], bool]) -> None:
    """End buildx when the job sets `stop`, or when `stalled()`; return when buildx ended by itself."""
    while proc.poll() is None:
        if stop is not None and stop.wait(STOP_POLL) or stalled():
            proc.terminate()
            return
        if stop is None:
            time.sleep(STOP_POLL)


def build(
    options: BuildOptions,
    image: ImageName,
    refs: Sequence[str],
    labels: Mapping[str, str],
    build_args: Mapping[str, str],
    credentials: RegistryAuth,
    log: Log,
    *,
    containerd_store: Callable[[], bool],
    push: bool = False,
    stop: threading.Event | None = None,
    provenance: str | None = None,
    layout: Path | None = None,
    started: Callable[[], None] | None = None,
) -> str:
    """Build, and push `refs` (`push`), write an OCI layout archive to `layout`, or load them into the daemon;
    returns the image id (the index digest for an index). `started` is called once buildx runs: work beside the
    build starts then, not before it (issue 17).

    Raises BuildError on a failed step (or when `stop` ended buildx), NotPushed when the image was built but
    its push failed.
    """
    buildx = find_buildx()
    check_daemon(options, containerd_store)
    other: list[str] = []
    with contextlib.ExitStack() as stack:
        tmp = private_folder()
        stack.callback(remove_folder, tmp)
        helper = None
        if credentials.username:
            providing = credhelper.provide(tmp, image.registry, credentials.username, credentials.password)
            helper = stack.enter_context(providing)
        stack.enter_context(log.group(f"Build {refs[0]}"))
        config = tmp / "docker-config"
        config.mkdir()
        write_config(config, image, helper)
        iidfile = tmp / "iid"
        argv = buildx_argv(buildx, options, refs, labels, build_args, iidfile, push, provenance, layout)
        env = buildx_env(options, config)
        # A push waits on the registry as long as it takes; built, buildx silent past the daemon timeout: stalled.
        silent_limit = daemon_timeout() if push else None
        heard = [time.monotonic(), False]  # last output, whether the push stalled

        def stalled() -> bool:
            heard[1] = bool(silent_limit and progress.image_id and time.monotonic() - heard[0] > silent_limit)
            return heard[1]

        with subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        ) as proc:
            from image_tagger.edges.buildlog import BuildProgress, split_stream  # while buildx starts (issue 17)

            progress = BuildProgress()
            if started is not None:
                started()
            if stop is not None or push:
                threading.Thread(target=_watch, args=(proc, stop, stalled), name="buildx-watch", daemon=True).start()
            assert proc.stdout is not None
            for item in split_stream(_decoded(proc.stdout)):
                heard[0] = time.monotonic()
                if isinstance(item, dict):
                    for text in progress.feed(item):
                        log.info(text)
                elif item.strip():
                    other.append(item)
                    log.info(item)
        if proc.returncode != 0:
            said = "\n".join(other[-5:]) or f"buildx exited with {proc.returncode}"
            if heard[1]:
                raise PushStalled(
                    f"push of {refs[0]} failed: the daemon did not answer in time (nothing for {silent_limit:g} s, "
                    f"{TIMEOUT_ENV}); the push was abandoned, a manifest already sent may still land",
                    progress.image_id,
                )
            if push and progress.image_id:  # built: what failed is the push
                error = progress.failure.error if progress.failure is not None else said
                raise NotPushed(f"push of {refs[0]} failed: {error}", progress.image_id)
            if progress.failure is not None:
                raise BuildError(f"build of {refs[0]} failed at {progress.failure}", progress.failure.step)
            raise BuildError(f"build of {refs[0]} failed: {said}")
        image_id = iidfile.read_text().strip() if iidfile.is_file() else ""
    if not image_id:
        raise BuildError(f"build of {refs[0]} reported no image id")
    return image_id
