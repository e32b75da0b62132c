"""Stand-ins for keyless signing (issue 18), each named as one: GitHub's OIDC token endpoint, a "cosign" signer
image built FROM scratch with busybox that records what it is handed, and loopback recorders for the real cosign's
Fulcio and Rekor. Used by tests/test_keyless.py and the action's end-to-end test."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import shutil
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import docker
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from image_tagger.demo.sampleapp import static_busybox
from image_tagger.edges import oidc
from image_tagger.edges.registry.session import RegistrySession
from image_tagger.edges.signer import SigningKey
from image_tagger.model.imagename import ImageName
from image_tagger.model.registry import RegistryAuth
from image_tagger.rules import signatures
from support.registry import Registry

BEARER = "runner-request-bearer-7f3a9c"
ISSUER = "https://token.actions.githubusercontent.com"
SIGNERS = {"label": "org.flux-ci-cd.role=keyless-signer"}
Answer = Callable[[str, str, dict[str, str], bytes], tuple[int, bytes]]


def jwt(subject: str) -> str:
    """A JWT-shaped token (header, claims, a made-up signature), as GitHub's endpoint hands out; unsigned here."""

    def part(document: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()

    claims = {"iss": ISSUER, "sub": subject, "aud": "sigstore", "iat": 1700000000, "exp": 9999999999}
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c3RhbmQtaW4tc2lnbmF0dXJl"


@dataclass
class Server:
    """A loopback HTTP server of the test's own; `seen` records (method, path, headers, body) per request."""

    port: int
    seen: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def serve(answer: Answer) -> Iterator[Server]:
    seen: list[tuple[str, str, dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = dict(self.headers)
            seen.append((self.command, self.path, headers, body))
            status, reply = answer(self.command, self.path, headers, body)
            self.send_response(status)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        do_GET = do_POST = _handle

        def log_message(self, *_: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield Server(httpd.server_address[1], seen)
    finally:
        httpd.shutdown()
        httpd.server_close()


def github_oidc(token: str) -> Answer:
    """Stand-in for the runner's token endpoint: the bearer and `audience=sigstore`, or a refusal."""

    def answer(method: str, path: str, headers: dict[str, str], _: bytes) -> tuple[int, bytes]:
        if method != "GET" or headers.get("Authorization") != f"Bearer {BEARER}":
            return 401, b'{"message": "bad bearer"}'
        if parse_qs(urlsplit(path).query).get("audience") != ["sigstore"]:
            return 400, b'{"message": "audience"}'
        return 200, json.dumps({"count": 1, "value": token}).encode()

    return answer


def runner_env(server: Server) -> dict[str, str]:
    """What the runner sets with `permissions: id-token: write`."""
    return {oidc.URL_ENV: f"{server.url}/idtoken?api-version=2.0", oidc.TOKEN_ENV: BEARER}


@contextmanager
def scratch_image(client: docker.DockerClient, folder: Path, dockerfile: str, **files: str | Path) -> Iterator[str]:
    """An image FROM scratch with static busybox, `dockerfile`'s steps and `files` (text, or a file to copy);
    removed afterwards."""
    busybox = static_busybox()
    if busybox is None:
        pytest.fail("no static busybox (apt-get install busybox-static): the stand-ins are built FROM scratch")
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, folder / "busybox")
    for name, content in files.items():
        if isinstance(content, Path):
            shutil.copy2(content, folder / name)
        else:
            (folder / name).write_text(content)
    (folder / "Dockerfile").write_text(BUSYBOX_SCRATCH + dockerfile)
    image, _ = client.images.build(path=str(folder), rm=True, forcerm=True)
    try:
        yield image.id
    finally:
        with contextlib.suppress(docker.errors.DockerException):
            client.images.remove(image.id, force=True)


BUSYBOX_SCRATCH = """\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/busybox", "mkdir", "-m", "1777", "/tmp"]
ENV PATH=/bin HOME=/tmp
"""

# The stand-in "cosign": records what it was handed and posts it to the test (which signs as cosign would); it
# misbehaves on purpose by printing the token and the Docker config, which the action's log must redact.
STAND_IN = """\
set -e
d=$(mktemp -d)
for a in "$@"; do echo "$a"; done > "$d/argv"
env > "$d/env"
token=$(sed -n 's/^--identity-token=//p' "$d/argv")
cp "$token" "$d/token"
cp "$DOCKER_CONFIG/config.json" "$d/config"
ls -ln "$DOCKER_CONFIG" > "$d/listing"
tar -C "$d" -cf - argv env token config listing | base64 > "$d.tar.b64"
echo "stand-in cosign: token $(cat "$token"), config $(cat "$DOCKER_CONFIG/config.json")"
wget -q -O - --post-file "$d.tar.b64" "$RECORDER/sign"
echo
wget -q -O /dev/null "$RECORDER/finished"
"""


@dataclass
class Recorder:
    """The test's side of the stand-in signer: what it was handed, the registry's tags while it ran, and when it
    finished. It signs in the stand-in's stead, with a throwaway key (the payload is what is checked here)."""

    registry: Registry
    status: int = 200
    handed: dict[str, str] = field(default_factory=dict)
    tags_while_signing: list[str] | None = None
    finished: float | None = None

    def answer(self, _: str, path: str, __: dict[str, str], body: bytes) -> tuple[int, bytes]:
        if path == "/finished":
            self.finished = time.monotonic()
            return 200, b""
        with tarfile.open(fileobj=io.BytesIO(base64.b64decode(body))) as tar:  # busybox wget posts text
            self.handed = {m.name: tar.extractfile(m).read().decode() for m in tar.getmembers() if m.isfile()}
        argv = self.handed["argv"].splitlines()
        name, _, digest = argv[-1].partition("@")
        claims = dict(argv[i + 1].split("=", 1) for i, arg in enumerate(argv) if arg == "-a")
        image = ImageName(*name.split("/", 1))
        self.tags_while_signing = self.registry.tags(image.path)
        if self.status != 200:
            return self.status, b"stand-in: refused"
        document = signatures.payload(claims["repository"], digest, claims["version"])
        signer = SigningKey("stand-in.key", ec.generate_private_key(ec.SECP256R1()))
        with RegistrySession(image, RegistryAuth(self.registry.username, self.registry.password)) as session:
            session.put_signature(digest, signatures.SignatureLayer(document, signer.sign(document)))
        return 200, b"stand-in: signed"


@contextmanager
def first_sighting(registry: Registry, repository: str, tag: str) -> Iterator[list[float]]:
    """Polls the registry's tag list while the block runs; yields the times `tag` was seen (monotonic)."""
    seen: list[float] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            if tag in registry.tags(repository):
                seen.append(time.monotonic())
            time.sleep(0.005)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        yield seen
        time.sleep(0.2)
    finally:
        stop.set()
        poller.join(10)


@contextmanager
def stand_in_signer(client: docker.DockerClient, folder: Path, recorder: Recorder) -> Iterator[str]:
    """The stand-in "cosign" image, posting to `recorder` (served for as long as the image is in use)."""
    with serve(recorder.answer) as back:
        dockerfile = f'COPY signer.sh /signer.sh\nENV RECORDER={back.url}\nENTRYPOINT ["/bin/sh", "/signer.sh"]\n'
        with scratch_image(client, folder, dockerfile, **{"signer.sh": STAND_IN}) as image:
            yield image
