"""Run a Docker container action the way actions/runner does (docs/github-actions-runtime.md §2-§6).

Faithful: `docker build -t {label}:{32hex} -f "<dir>/Dockerfile" "<dir>"`, the `docker run` argument order,
`-e NAME` by name only with values in the docker CLI's environment, every declared input as `INPUT_*`
(defaults filled, hyphens kept), the five mounts plus docker.sock, the event file, uuid-named file-command
files, and the runner's parsers for `GITHUB_OUTPUT` and `::commands::`.

A released action is `runs.image: docker://REF@sha256:...` (§2.2): the runner `docker pull`s it in "Set up
job" and runs it with the same `docker run` list. `publish()` stands in for the release workflow (build from
the Dockerfile, push to a loopback registry, pin a copy of action.yml with .github/scripts/pin_action_image.py),
`pull()` for PullActionContainerAsync.

Deviations (constants below), each recorded in `ActionRun.deviations` so tests name them: the base image
and buildx image build args, `--network host` for the build only when the daemon has no bridge, `--network host`
for the run (the registry is on loopback), our dockerd's socket as the docker.sock mount source, and for
docker:// actions a loopback registry (plain HTTP, anonymous) in place of ghcr.io, filled by a plain
`docker build` + `docker push` instead of the release workflow's run of the action.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ruamel.yaml import YAML

BUILD_ARG_BASE_IMAGE = "docker build --build-arg BASE_IMAGE=<local image>: Docker Hub is unreachable here"
BUILD_ARG_DEBIAN_ARCHIVE = (
    "docker build --build-arg DEBIAN_ARCHIVE=http://deb.debian.org/debian: snapshot.debian.org is unreachable here"
)
LOCAL_DEBIAN_ARCHIVE = "http://deb.debian.org/debian"
LOOPBACK_RELEASE = (
    "docker:// image from a loopback registry, built and pushed by `docker build`/`docker push`, not from ghcr.io"
)
BUILD_NETWORK_HOST = "docker build --network host: this dockerd has no bridge network (--bridge=none)"
RUN_NETWORK_HOST = "docker run --network host: the test registry listens on 127.0.0.1 only"
SOCKET_SOURCE = "docker.sock mount source is the test dockerd's socket (DOCKER_HOST), not /var/run/docker.sock"

# FileCommandManager.cs prefixes, keyed by the GITHUB_* variable they back.
FILE_COMMAND_PREFIXES = {
    "GITHUB_PATH": "add_path_",
    "GITHUB_ENV": "set_env_",
    "GITHUB_STEP_SUMMARY": "step_summary_",
    "GITHUB_STATE": "save_state_",
    "GITHUB_OUTPUT": "set_output_",
}
# ActionCommandManager's registered commands; any other `::x::` line is plain output.
KNOWN_COMMANDS = frozenset(
    {
        *("add-mask", "group", "endgroup", "error", "warning", "notice", "debug", "echo", "stop-commands"),
        *("add-matcher", "remove-matcher", "set-output", "save-state", "set-env", "add-path"),
    }
)
TEMP_SUBDIRS = ("_github_home", "_github_workflow", "_runner_file_commands")
ALL_DEVIATIONS = frozenset(
    {BUILD_ARG_BASE_IMAGE, BUILD_ARG_DEBIAN_ARCHIVE, BUILD_NETWORK_HOST, RUN_NETWORK_HOST, SOCKET_SOURCE}
    | {LOOPBACK_RELEASE}
)
PIN_SCRIPT = Path(__file__).resolve().parents[2] / ".github" / "scripts" / "pin_action_image.py"
DOCKER_PREFIX = "docker://"


@dataclass(frozen=True)
class WorkflowCommand:
    """One `::name k=v::message` line the runner would act on."""

    name: str
    properties: dict[str, str]
    message: str
    stream: str


@dataclass(frozen=True)
class ActionRun:
    """What a workflow step would see after the action ran."""

    returncode: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str
    commands: list[WorkflowCommand]
    argv: list[str]
    temp_dir: Path
    workspace: Path
    deviations: tuple[str, ...]

    def named(self, name: str) -> list[WorkflowCommand]:
        """Commands of one kind, e.g. `named("error")`."""
        return [command for command in self.commands if command.name == name]


def docker_socket_path(docker_host: str | None = None) -> str:
    """The host socket the runner-style `-v docker.sock` mount must use: ours, from DOCKER_HOST."""
    host = docker_host or os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        raise ValueError(f"DOCKER_HOST must be a unix socket to mount into the action, got {host!r}")
    return host.removeprefix("unix://")


def input_env_name(name: str) -> str:
    """Handler.AddInputsToEnvironment: spaces to `_`, upper-cased, hyphens kept."""
    return "INPUT_" + name.replace(" ", "_").upper()


def declared_inputs(action_yml: Path) -> dict[str, str]:
    """Every input action.yml declares, with its default or "" (ActionRunner adds them all)."""
    manifest = YAML(typ="safe").load(action_yml.read_text())
    return {name: str(spec.get("default", "") or "") for name, spec in (manifest.get("inputs") or {}).items()}


def unescape(text: str, *, property_value: bool) -> str:
    """Reverse toolkit command.ts escaping (`%3A`/`%2C` only occur in property values)."""
    pairs = [("%0D", "\r"), ("%0A", "\n")] + ([("%3A", ":"), ("%2C", ",")] if property_value else [])
    for escaped, plain in [*pairs, ("%25", "%")]:
        text = text.replace(escaped, plain)
    return text


def parse_workflow_commands(text: str, stream: str) -> list[WorkflowCommand]:
    """Scan output lines like OutputManager/ActionCommand.TryParse, honouring `::stop-commands::`."""
    commands: list[WorkflowCommand] = []
    stop_token = None
    for raw in text.splitlines():
        line = raw.lstrip()
        if not line.startswith("::"):
            continue
        end = line.find("::", 2)
        if end < 0:
            continue
        name, _, props = line[2:end].partition(" ")
        message = line[end + 2 :]
        if stop_token is not None:
            if name == stop_token:
                stop_token = None
            continue
        if name not in KNOWN_COMMANDS:
            continue
        properties = dict(
            (key.strip(), unescape(value, property_value=True))
            for key, _, value in (item.partition("=") for item in props.split(",") if "=" in item)
        )
        if name == "stop-commands":
            stop_token = message
        commands.append(WorkflowCommand(name, properties, unescape(message, property_value=False), stream))
    return commands


def parse_file_command(text: str) -> dict[str, str]:
    """EnvFileKeyValuePairs: `NAME=VALUE` when `=` precedes `<<`, else a heredoc up to its delimiter line."""
    lines = text.split("\n")
    pairs: dict[str, str] = {}
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line:
            continue
        equals, heredoc = line.find("="), line.find("<<")
        if equals >= 0 and (heredoc < 0 or equals < heredoc):
            name, value = line[:equals], line[equals + 1 :]
        elif heredoc >= 0:
            name, delimiter = line[:heredoc], line[heredoc + 2 :]
            if not name or not delimiter:
                raise ValueError(f"Invalid format '{line}'")
            try:
                end = lines.index(delimiter, index)
            except ValueError:
                raise ValueError(f"Invalid value. Matching delimiter not found '{delimiter}'") from None
            if end == len(lines) - 1:
                raise ValueError(f"Invalid value. EOF marker missing new line '{delimiter}'")
            value, index = "\n".join(lines[index:end]), end + 1
        else:
            raise ValueError(f"Invalid format '{line}'")
        if not name:
            raise ValueError(f"Invalid format '{line}'")
        pairs[name] = value
    return pairs


def ref_context(ref: str) -> dict[str, str]:
    """GITHUB_REF_NAME/REF_TYPE as the runner derives them from the ref."""
    for prefix, ref_type in (("refs/tags/", "tag"), ("refs/heads/", "branch"), ("refs/pull/", "branch")):
        if ref.startswith(prefix):
            return {"GITHUB_REF_NAME": ref.removeprefix(prefix), "GITHUB_REF_TYPE": ref_type}
    raise ValueError(f"unsupported ref {ref!r}")


def daemon_has_bridge() -> bool:
    """Whether build containers get a network by default (a dockerd with --bridge=none has no `bridge`)."""
    done = subprocess.run(["docker", "network", "inspect", "bridge"], capture_output=True)
    return done.returncode == 0


@dataclass
class GithubRunner:
    """One simulated runner: a label, a built action image, and fresh `_temp` dirs per run."""

    action_dir: Path
    base_image: str | None = None
    label: str = field(default_factory=lambda: hashlib.sha256(b"flux-ci-cd harness").hexdigest()[:6])
    image: str = ""
    deviations: tuple[str, ...] = (SOCKET_SOURCE, RUN_NETWORK_HOST)
    docker_host: str | None = None  # the daemon that pulls and runs the action (DOCKER_HOST when None)

    def docker_env(self) -> dict[str, str]:
        """The environment of the runner's docker commands: DOCKER_HOST is this runner's daemon."""
        return {**os.environ, **({"DOCKER_HOST": self.docker_host} if self.docker_host else {})}

    def build_args(self) -> list[str]:
        """The named deviations of every build of the action's Dockerfile here."""
        extra: list[str] = []
        if self.base_image:
            extra += ["--build-arg", f"BASE_IMAGE={self.base_image}"]
            self.deviate(BUILD_ARG_BASE_IMAGE)
            extra += ["--build-arg", f"DEBIAN_ARCHIVE={LOCAL_DEBIAN_ARCHIVE}"]
            self.deviate(BUILD_ARG_DEBIAN_ARCHIVE)
        if not daemon_has_bridge():
            extra += ["--network", "host"]
            self.deviate(BUILD_NETWORK_HOST)
        return extra

    def deviate(self, deviation: str) -> None:
        if deviation not in self.deviations:
            self.deviations += (deviation,)

    def docker_build(self, tag: str) -> None:
        dockerfile = self.action_dir / "Dockerfile"
        argv = ["docker", "build", "-t", tag, *self.build_args(), "-f", str(dockerfile), str(dockerfile.parent)]
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"action image build failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")

    def build(self) -> str:
        """Runner-style `docker build -t {label}:{32hex} -f "<dir>/Dockerfile" "<dir>"` (a Dockerfile action)."""
        tag = f"{self.label}:{uuid.uuid4().hex}"
        self.docker_build(tag)
        self.image = tag
        return tag

    def publish(self, registry_host: str, into: Path, *, repository: str = "flux-ci-cd/flux-ci-cd") -> str:
        """The release, locally: build the Dockerfile, push it, and pin a copy of the action at `into` to it.

        `into` gets action.yml only (all a docker:// action needs); it becomes this runner's action_dir, so the
        declared inputs come from the pinned copy. Returns the `docker://host/repository:tag@sha256:…` reference.
        """
        reference = f"{registry_host}/{repository}:0.0.0-{uuid.uuid4().hex[:12]}"
        self.docker_build(reference)
        try:
            pushed = subprocess.run(["docker", "push", reference], capture_output=True, text=True)
        finally:
            subprocess.run(["docker", "image", "rm", reference], capture_output=True)
        found = re.search(r"digest: (sha256:[0-9a-f]{64})", pushed.stdout)
        if pushed.returncode != 0 or not found:
            raise RuntimeError(f"push of the action image failed:\n{pushed.stdout[-2000:]}\n{pushed.stderr[-2000:]}")
        pinned = f"{DOCKER_PREFIX}{reference}@{found[1]}"
        into.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.action_dir / "action.yml", into / "action.yml")
        subprocess.run(
            [sys.executable, str(PIN_SCRIPT), "--action", str(into / "action.yml"), "--image", pinned],
            check=True,
            capture_output=True,
        )
        self.action_dir = into
        self.deviate(LOOPBACK_RELEASE)
        return pinned

    def runs(self) -> dict:
        """action.yml's `runs:` (entrypoint and args go on the `docker run` line)."""
        return YAML(typ="safe").load((self.action_dir / "action.yml").read_text())["runs"]

    def pull(self) -> str:
        """PullActionContainerAsync: `docker pull` of runs.image without `docker://` (3 tries), then run as is."""
        runs = self.runs()
        if runs.get("using") != "docker" or not str(runs.get("image", "")).startswith(DOCKER_PREFIX):
            raise RuntimeError(f"not a docker:// container action: {runs!r}")
        image = runs["image"].removeprefix(DOCKER_PREFIX)
        for attempt in range(3):
            done = subprocess.run(["docker", "pull", image], capture_output=True, text=True, env=self.docker_env())
            if done.returncode == 0:
                break
            if attempt == 2:
                raise RuntimeError(f"docker pull {image} failed:\n{done.stderr[-2000:]}")
        self.image = image
        return image

    def remove_image(self) -> None:
        """What the runner's job cleanup does with the image it built or pulled."""
        if self.image:
            subprocess.run(["docker", "image", "rm", "--force", self.image], capture_output=True, env=self.docker_env())

    def run(
        self,
        root: Path,
        workspace: Path,
        *,
        event: dict,
        ref: str,
        sha: str,
        inputs: dict[str, str],
        event_name: str = "push",
        repository: str = "acme/app",
        args: tuple[str, ...] = (),
        server: Mapping[str, str] | None = None,
        step_env: Mapping[str, str] | None = None,
    ) -> ActionRun:
        """Run the built image like ContainerActionHandler + DockerCommandManager.DockerRun.

        `server` replaces GitHub's endpoints (GITHUB_API_URL, GITHUB_SERVER_URL) with local stand-ins;
        `step_env` is the step's `env:`, which the runner hands to the container too.
        """
        if not self.image:
            raise RuntimeError("build() or pull() the action image first")
        temp = root / "_temp"
        for sub in TEMP_SUBDIRS:
            (temp / sub).mkdir(parents=True, exist_ok=True)
        (temp / "_github_workflow" / "event.json").write_text(json.dumps(event))
        step_id = uuid.uuid4()
        files = {var: temp / "_runner_file_commands" / f"{p}{step_id}" for var, p in FILE_COMMAND_PREFIXES.items()}
        for path in files.values():
            path.touch()
        env = self.step_env(
            inputs, ref=ref, sha=sha, event_name=event_name, repository=repository, root=root, files=files
        )
        env |= dict(server or {}) | dict(step_env or {})
        argv = self.run_argv(env, temp=temp, workspace=workspace, args=args)
        done = subprocess.run(argv, env={**self.docker_env(), **env}, capture_output=True, text=True)
        commands = parse_workflow_commands(done.stdout, "stdout") + parse_workflow_commands(done.stderr, "stderr")
        return ActionRun(
            returncode=done.returncode,
            stdout=done.stdout,
            stderr=done.stderr,
            outputs=parse_file_command(files["GITHUB_OUTPUT"].read_text()),
            summary=files["GITHUB_STEP_SUMMARY"].read_text(),
            commands=commands,
            argv=argv,
            temp_dir=temp,
            workspace=workspace,
            deviations=self.deviations,
        )

    def step_env(
        self,
        inputs: dict[str, str],
        *,
        ref: str,
        sha: str,
        event_name: str,
        repository: str,
        root: Path,
        files: dict[str, Path],
    ) -> dict[str, str]:
        """The container env in the runner's order: inputs, HOME, GITHUB_*, RUNNER_*, ACTIONS_*."""
        given = declared_inputs(self.action_dir / "action.yml") | inputs
        owner = repository.split("/")[0]
        env = {input_env_name(name): value for name, value in given.items()}
        env["HOME"] = "/github/home"
        env |= {
            "GITHUB_JOB": "build",
            "GITHUB_REF": ref,
            "GITHUB_SHA": sha,
            "GITHUB_REPOSITORY": repository,
            "GITHUB_REPOSITORY_OWNER": owner,
            "GITHUB_REPOSITORY_OWNER_ID": "1001",
            "GITHUB_RUN_ID": "7000000001",
            "GITHUB_RUN_NUMBER": "1",
            "GITHUB_RETENTION_DAYS": "90",
            "GITHUB_RUN_ATTEMPT": "1",
            "GITHUB_ACTOR_ID": "1002",
            "GITHUB_ACTOR": "dev",
            "GITHUB_WORKFLOW": "release",
            "GITHUB_HEAD_REF": "",
            "GITHUB_BASE_REF": "",
            "GITHUB_EVENT_NAME": event_name,
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_API_URL": "https://api.github.com",
            "GITHUB_GRAPHQL_URL": "https://api.github.com/graphql",
            **ref_context(ref),
            "GITHUB_REF_PROTECTED": "false",
            "GITHUB_WORKFLOW_REF": f"{repository}/.github/workflows/release.yml@{ref}",
            "GITHUB_WORKFLOW_SHA": sha,
            "GITHUB_REPOSITORY_ID": "1003",
            "GITHUB_TRIGGERING_ACTOR": "dev",
            "GITHUB_WORKSPACE": "/github/workspace",
            "GITHUB_ACTION": "__flux-ci-cd",
            "GITHUB_EVENT_PATH": "/github/workflow/event.json",
            "GITHUB_ACTION_REPOSITORY": "flux-ci-cd/image-tagger",
            "GITHUB_ACTION_REF": "v1",
            **{var: f"/github/file_commands/{path.name}" for var, path in files.items()},
            "RUNNER_OS": "Linux",
            "RUNNER_ARCH": "X64",
            "RUNNER_NAME": "GitHub Actions 1",
            "RUNNER_ENVIRONMENT": "github-hosted",
            "RUNNER_TOOL_CACHE": "/opt/hostedtoolcache",
            "RUNNER_TEMP": "/github/runner_temp",
            "RUNNER_WORKSPACE": str(root / "repo"),
            "ACTIONS_RUNTIME_URL": "https://pipelines.actions.githubusercontent.com/x/",
            "ACTIONS_RUNTIME_TOKEN": "harness-runtime-token",
            "ACTIONS_CACHE_URL": "https://artifactcache.actions.githubusercontent.com/x/",
            "ACTIONS_RESULTS_URL": "https://results-receiver.actions.githubusercontent.com/",
        }
        return env

    def run_argv(self, env: dict[str, str], *, temp: Path, workspace: Path, args: tuple[str, ...]) -> list[str]:
        """DockerRun's argument list, in order; `-e NAME` only, so values never appear in argv."""
        name = re.sub(r"^[0-9]+", "", re.sub(r"[^A-Za-z0-9_]", "", self.image))
        argv = ["docker", "run", "--name", f"{name}_{uuid.uuid4().hex[:6]}", "--label", self.label]
        argv += ["--workdir", "/github/workspace", "--rm"]
        for key in env:
            argv += ["-e", key]
        argv += ["-e", "GITHUB_ACTIONS=true"] + ([] if "CI" in env else ["-e", "CI=true"])
        runs = self.runs()
        if runs.get("entrypoint"):
            argv += ["--entrypoint", str(runs["entrypoint"])]
        argv += ["--network", "host"]
        mounts = {
            docker_socket_path(self.docker_host): "/var/run/docker.sock",
            str(temp): "/github/runner_temp",
            str(temp / "_github_home"): "/github/home",
            str(temp / "_github_workflow"): "/github/workflow",
            str(temp / "_runner_file_commands"): "/github/file_commands",
            str(workspace): "/github/workspace",
        }
        for source, target in mounts.items():
            argv += ["-v", f"{source}:{target}"]
        return [*argv, self.image, *(args or [str(arg) for arg in runs.get("args") or []])]


def run_module_as_step(module: str, env: Mapping[str, str], temp: Path, timeout: float = 300) -> dict:
    """`python -m MODULE` as a step's process on the host: `env` plus fresh output and summary files in `temp`.

    Returns the exit code, both streams, the parsed outputs, the summary and the stdout workflow commands.
    """
    temp.mkdir(parents=True, exist_ok=True)
    output, summary = temp / "output", temp / "summary"
    output.write_text("")
    summary.write_text("")
    files = {"GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)}
    done = subprocess.run(
        [sys.executable, "-m", module], env={**env, **files}, capture_output=True, text=True, timeout=timeout
    )
    return {
        "returncode": done.returncode,
        "stdout": done.stdout,
        "stderr": done.stderr,
        "outputs": parse_file_command(output.read_text()),
        "summary": summary.read_text(),
        "commands": parse_workflow_commands(done.stdout, "stdout"),
    }
