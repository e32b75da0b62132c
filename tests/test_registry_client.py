"""The registry edge (edges/registry) against real docker-registry processes on 127.0.0.1: open, htpasswd, JWT.

Tags are seeded with the registry HTTP API (a config blob and a layer-less manifest per tag), which is
all a tag list needs. distribution 2.8 ignores `n` and never pages, so paging is exercised through a
small proxy that pages the real registry's answer as the distribution spec describes.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from support.registry import Registry, basic_entry, push_tags, write_docker_config

from image_tagger.demo import localregistry
from image_tagger.edges.registry.credentials import credentials_for
from image_tagger.edges.registry.session import RegistrySession, list_tags, parse_challenge, tags_url
from image_tagger.model.errors import InputError, PublishError
from image_tagger.model.imagename import parse_image
from image_tagger.model.registry import RegistryAuth

REPOSITORY = "registry-client/app"
TAGS = ["1.0.0", "1.1.0", "2.0.0-rc.1", "latest", "main-3f2c1a9-1764110000"]
HUB_KEYS = ["https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io"]


# --- helpers ---------------------------------------------------------------------------------------


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Run an HTTP handler on a loopback port in a thread; yields its host:port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Keep pytest output clean."""

    def reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def assert_one_line_naming(error: pytest.ExceptionInfo[PublishError], *parts: str) -> None:
    text = str(error.value)
    assert "\n" not in text
    for part in parts:
        assert part in text


# --- fixtures: seeded registries ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def open_repo(open_registry: Registry) -> str:
    return open_registry.seed(REPOSITORY, TAGS)


@pytest.fixture(scope="module")
def basic_repo(registry: Registry) -> str:
    return registry.seed(REPOSITORY, TAGS)


def paging_proxy(upstream: str, seen: list[str]) -> type[BaseHTTPRequestHandler]:
    """Forward GETs (with Authorization) to `upstream`; page tags/list by `n` and `last` with Link headers."""

    class Proxy(QuietHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            auth = {"Authorization": self.headers["Authorization"]} if self.headers["Authorization"] else {}
            answer = requests.get(f"http://{upstream}{url.path}", headers=auth, timeout=10)
            if answer.status_code != 200 or not url.path.endswith("/tags/list"):
                challenge = answer.headers.get("WWW-Authenticate")
                self.reply(answer.status_code, answer.content, {"WWW-Authenticate": challenge} if challenge else {})
                return
            body = answer.json()
            remaining = [tag for tag in sorted(body["tags"]) if tag > query.get("last", "")]
            size = int(query.get("n", len(remaining) or 1))
            page, more = remaining[:size], remaining[size:]
            headers = {"Content-Type": "application/json"}
            if more:
                headers["Link"] = f'<{url.path}?{urlencode({"n": size, "last": page[-1]})}>; rel="next"'
            self.reply(200, json.dumps({"name": body["name"], "tags": page}).encode(), headers)

    return Proxy


# --- fixtures: a registry behind a JWT token server ---------------------------------------------------

SERVICE = "flux-ci-cd-test-registry"
ISSUER = "flux-ci-cd-test-issuer"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenIssuer:
    """Signs distribution tokens (RS256, cert chain in `x5c`, the form docker-registry 2.8 verifies)."""

    key: Any
    cert_der: bytes

    @classmethod
    def create(cls, cert_file: Path) -> TokenIssuer:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(key, cert.public_bytes(serialization.Encoding.DER))

    def token(self, subject: str, scope: str) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        kind, name, actions = scope.split(":")
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(self.cert_der).decode()]}
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": [{"type": kind, "name": name, "actions": actions.split(",")}],
        }
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64url(signature)}"


@dataclass
class TokenRegistry:
    """A registry trusting a token server whose answer puts each account's token in its own JSON field."""

    host: str
    accounts: dict[str, tuple[str, str]]  # username -> (password, JSON field of the token)
    token_requests: list[dict[str, str]] = field(default_factory=list)


def token_server(
    issuer: TokenIssuer, accounts: dict[str, tuple[str, str]], log: list[dict[str, str]]
) -> type[BaseHTTPRequestHandler]:
    """GET /token?service=&scope= with Basic auth of a known account -> a token for exactly that scope."""

    class Tokens(QuietHandler):
        def do_GET(self) -> None:
            query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
            user, _, password = self._basic().partition(":")
            log.append({**query, "user": user})
            if user not in accounts or accounts[user][0] != password:
                self.reply(401, b'{"details":"bad credentials"}', {"Content-Type": "application/json"})
                return
            body = {accounts[user][1]: issuer.token(user, query["scope"])}
            self.reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

        def _basic(self) -> str:
            value = self.headers.get("Authorization", "")
            return base64.b64decode(value.removeprefix("Basic ")).decode() if value.startswith("Basic ") else ""

    return Tokens


@pytest.fixture(scope="module")
def token_registry(registry_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenRegistry]:
    root = tmp_path_factory.mktemp("token-registry")
    issuer = TokenIssuer.create(root / "token-cert.pem")
    accounts = {"ci-bot": ("t0ken-Pa55", "token"), "oauth-bot": ("0auth-Pa55", "access_token")}
    log: list[dict[str, str]] = []
    auth = (
        f"auth:\n  token:\n    realm: http://{{token_host}}/token\n    service: {SERVICE}\n"
        f"    issuer: {ISSUER}\n    rootcertbundle: {root / 'token-cert.pem'}\n"
    )
    with (
        serve(token_server(issuer, accounts, log)) as token_host,
        localregistry.serve(root, auth.replace("{token_host}", token_host)) as served,
    ):
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {issuer.token('seeder', f'repository:{REPOSITORY}:pull,push')}"
        push_tags(served.host, REPOSITORY, TAGS, http)
        yield TokenRegistry(served.host, accounts, log)


@pytest.fixture
def stub_registry() -> Iterator[Callable[[type[BaseHTTPRequestHandler]], str]]:
    """Serve one-off handlers for the duration of a test (for answers no real registry gives)."""
    with ExitStack() as stack:
        yield lambda handler: stack.enter_context(serve(handler))


# --- pure decisions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "url"),
    [
        ("acme/app", "https://registry-1.docker.io/v2/acme/app/tags/list?n=1000"),
        ("alpine", "https://registry-1.docker.io/v2/library/alpine/tags/list?n=1000"),
        ("docker.io/acme/app", "https://registry-1.docker.io/v2/acme/app/tags/list?n=1000"),
        ("index.docker.io/acme/app", "https://registry-1.docker.io/v2/acme/app/tags/list?n=1000"),
        ("ghcr.io/acme/app", "https://ghcr.io/v2/acme/app/tags/list?n=1000"),
        ("registry.example.com:5000/a/b/c", "https://registry.example.com:5000/v2/a/b/c/tags/list?n=1000"),
        ("127.0.0.1:5000/acme/app", "http://127.0.0.1:5000/v2/acme/app/tags/list?n=1000"),
        ("127.1.2.3/acme/app", "http://127.1.2.3/v2/acme/app/tags/list?n=1000"),
        ("localhost:5000/acme/app", "http://localhost:5000/v2/acme/app/tags/list?n=1000"),
        ("[::1]:5000/acme/app", "http://[::1]:5000/v2/acme/app/tags/list?n=1000"),
    ],
)
def test_tags_url_follows_flux_image_names(image: str, url: str) -> None:
    assert tags_url(parse_image(image)) == url


@pytest.mark.parametrize(
    ("header", "scheme", "params"),
    [
        ('Basic realm="flux-ci-cd-test"', "basic", {"realm": "flux-ci-cd-test"}),
        (
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
            'scope="repository:library/alpine:pull"',
            "bearer",
            {
                "realm": "https://auth.docker.io/token",
                "service": "registry.docker.io",
                "scope": "repository:library/alpine:pull",
            },
        ),
        (
            "bearer realm=http://127.0.0.1:1/token, service=reg",
            "bearer",
            {"realm": "http://127.0.0.1:1/token", "service": "reg"},
        ),
        ("", "", {}),
    ],
)
def test_parse_challenge(header: str, scheme: str, params: dict[str, str]) -> None:
    assert parse_challenge(header) == (scheme, params)


def test_auth_repr_hides_password() -> None:
    assert "s3cr3t" not in repr(RegistryAuth("ci-bot", "s3cr3t"))


def test_bad_image_is_input_error() -> None:
    with pytest.raises(InputError, match="carries a tag"):
        list_tags("127.0.0.1:1/acme/app:1.0.0")


# --- Docker config ----------------------------------------------------------------------------------


@pytest.mark.parametrize("key", HUB_KEYS)
@pytest.mark.parametrize("registry", ["docker.io", "index.docker.io", "registry-1.docker.io"])
def test_docker_hub_entry_under_any_key(tmp_path: Path, key: str, registry: str) -> None:
    config = write_docker_config(tmp_path, {"auths": {key: basic_entry("hub-user", "hub:pass")}})
    assert credentials_for(registry, config) == RegistryAuth("hub-user", "hub:pass")


@pytest.mark.parametrize("key", ["127.0.0.1:5000", "http://127.0.0.1:5000", "https://127.0.0.1:5000/v2/"])
def test_registry_key_may_carry_scheme_and_path(tmp_path: Path, key: str) -> None:
    config = write_docker_config(tmp_path, {"auths": {key: {"username": "u", "password": "p"}}})
    assert credentials_for("127.0.0.1:5000", config) == RegistryAuth("u", "p")
    assert credentials_for("127.0.0.1:5001", config) == RegistryAuth()


def test_no_entry_or_no_config_is_anonymous(tmp_path: Path) -> None:
    assert credentials_for("ghcr.io", tmp_path / "missing") == RegistryAuth()
    config = write_docker_config(tmp_path, {"auths": {"ghcr.io": basic_entry("u", "p")}})
    assert credentials_for("docker.io", config) == RegistryAuth()


def test_docker_config_env_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "DOCKER_CONFIG", str(write_docker_config(tmp_path, {"auths": {"ghcr.io": basic_entry("u", "p")}}))
    )
    assert credentials_for("ghcr.io") == RegistryAuth("u", "p")


@pytest.mark.parametrize("content", ['{"auths": {"ghcr.io": {"auth": "not base64!"}}}', "{not json", "[]"])
def test_broken_config_is_input_error(tmp_path: Path, content: str) -> None:
    (tmp_path / "config.json").write_text(content)
    with pytest.raises(InputError, match=str(tmp_path / "config.json")):
        credentials_for("ghcr.io", tmp_path)


@pytest.fixture
def credential_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `docker-credential-fake` on PATH that knows one server URL per the helper protocol."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-fake"
    helper.write_text(
        "#!/bin/sh\n"
        '[ "$1" = get ] || exit 2\n'
        "read -r server\n"
        'case "$server" in\n'
        '  https://index.docker.io/v1/) echo \'{"Username":"helper-user","Secret":"helper-pw"}\' ;;\n'
        '  oauth.example) echo \'{"Username":"<token>","Secret":"refresh"}\' ;;\n'
        '  *) echo "credentials not found in native keychain"; exit 1 ;;\n'
        "esac\n"
    )
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return tmp_path / "docker"


def test_creds_store_helper_is_asked_with_docker_server_url(credential_helper: Path) -> None:
    config = write_docker_config(
        credential_helper, {"credsStore": "fake", "auths": {"https://index.docker.io/v1/": {}}}
    )
    assert credentials_for("docker.io", config) == RegistryAuth("helper-user", "helper-pw")
    assert credentials_for("ghcr.io", config) == RegistryAuth()


def test_cred_helpers_win_over_store_and_identity_tokens_are_anonymous(credential_helper: Path) -> None:
    config = write_docker_config(
        credential_helper,
        {
            "credsStore": "missing-helper",
            "credHelpers": {"index.docker.io": "fake", "oauth.example": "fake"},
            "auths": {"ghcr.io": basic_entry("inline", "pw")},
        },
    )
    assert credentials_for("docker.io", config) == RegistryAuth("helper-user", "helper-pw")
    assert credentials_for("oauth.example", config) == RegistryAuth()
    assert credentials_for("ghcr.io", config) == RegistryAuth("inline", "pw")  # store not installed


# --- listing from real registries -------------------------------------------------------------------


def test_open_registry_lists_anonymously(open_registry: Registry, open_repo: str) -> None:
    tags = list_tags(open_repo)
    assert sorted(tags) == sorted(TAGS) == open_registry.tags(REPOSITORY)


def test_basic_auth_from_docker_config(
    registry: Registry, basic_repo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    write_docker_config(
        tmp_path, {"auths": {f"http://{registry.host}": basic_entry(registry.username, registry.password)}}
    )
    tags = list_tags(basic_repo, credentials_for(registry.host))
    assert sorted(tags) == sorted(TAGS) == registry.tags(REPOSITORY)


def test_basic_registry_without_credentials(registry: Registry, basic_repo: str) -> None:
    with pytest.raises(PublishError, match="refused anonymous access") as error:
        list_tags(basic_repo)
    assert_one_line_naming(error, registry.host, basic_repo)


def test_wrong_password(registry: Registry, basic_repo: str) -> None:
    with pytest.raises(PublishError, match="credentials of 'ci-bot' were refused") as error:
        list_tags(basic_repo, RegistryAuth(registry.username, "wrong"))
    assert_one_line_naming(error, registry.host, basic_repo)
    assert "wrong" not in str(error.value)


def test_unknown_repository(open_registry: Registry, open_repo: str) -> None:
    with pytest.raises(PublishError, match="no repository registry-client/missing") as error:
        list_tags(f"{open_registry.host}/registry-client/missing")
    assert_one_line_naming(error, open_registry.host, "404")


def test_unreachable_port_names_registry() -> None:
    host = f"127.0.0.1:{localregistry.free_port()}"
    with pytest.raises(PublishError, match="cannot reach") as error:
        list_tags(f"{host}/acme/app", timeout=5)
    assert_one_line_naming(error, f"registry {host}", f"{host}/acme/app", "refused")


def test_pages_are_followed_with_the_same_auth(
    registry: Registry, basic_repo: str, stub_registry: Callable[[type[BaseHTTPRequestHandler]], str]
) -> None:
    seen: list[str] = []
    proxy = stub_registry(paging_proxy(registry.host, seen))
    tags = list_tags(f"{proxy}/{REPOSITORY}", RegistryAuth(registry.username, registry.password), page_size=2)
    assert tags == registry.tags(REPOSITORY)  # the proxy pages in sorted order
    pages = [path for path in seen if "tags/list" in path]
    assert len(pages) == 1 + (len(TAGS) + 1) // 2  # the anonymous 401, then three pages of two


def test_invalid_json(stub_registry: Callable[[type[BaseHTTPRequestHandler]], str]) -> None:
    class NotJson(QuietHandler):
        def do_GET(self) -> None:
            self.reply(200, b"<html>maintenance</html>", {"Content-Type": "text/html"})

    host = stub_registry(NotJson)
    with pytest.raises(PublishError, match="invalid JSON") as error:
        list_tags(f"{host}/acme/app")
    assert_one_line_naming(error, f"registry {host}", f"{host}/acme/app")


@pytest.mark.parametrize("user", ["ci-bot", "oauth-bot"])
def test_bearer_token_flow(token_registry: TokenRegistry, user: str) -> None:
    before = len(token_registry.token_requests)
    password = token_registry.accounts[user][0]
    tags = list_tags(f"{token_registry.host}/{REPOSITORY}", RegistryAuth(user, password))
    assert sorted(tags) == sorted(TAGS)
    [request] = token_registry.token_requests[before:]
    assert request == {"service": SERVICE, "scope": f"repository:{REPOSITORY}:pull", "user": user}


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        (RegistryAuth(), "refused anonymous access"),
        (RegistryAuth("ci-bot", "wrong"), "credentials of 'ci-bot' were refused"),
    ],
)
def test_bearer_token_refused(token_registry: TokenRegistry, auth: RegistryAuth, message: str) -> None:
    with pytest.raises(PublishError, match=message) as error:
        list_tags(f"{token_registry.host}/{REPOSITORY}", auth)
    assert_one_line_naming(error, token_registry.host, REPOSITORY)


def test_bearer_copy_asks_for_push_scope_only_to_write(token_registry: TokenRegistry) -> None:
    """A registry-side copy under a new tag: read with a pull token, written with a pull,push token."""
    before = len(token_registry.token_requests)
    password = token_registry.accounts["ci-bot"][0]
    with RegistrySession(parse_image(f"{token_registry.host}/{REPOSITORY}"), RegistryAuth("ci-bot", password)) as s:
        manifest = s.manifest("1.0.0")
        assert manifest is not None
        assert s.put_manifest("1.0.0-copy", manifest) == manifest.digest
        assert s.manifest("1.0.0-copy") == manifest
        assert "1.0.0-copy" in s.tags()
    scopes = [r["scope"] for r in token_registry.token_requests[before:]]
    assert scopes == [f"repository:{REPOSITORY}:pull", f"repository:{REPOSITORY}:pull,push"]


def test_bearer_copy_refused_without_credentials(token_registry: TokenRegistry) -> None:
    with (
        RegistrySession(parse_image(f"{token_registry.host}/{REPOSITORY}")) as s,
        pytest.raises(PublishError, match="refused anonymous access") as error,
    ):
        s.manifest("1.0.0")
    assert_one_line_naming(error, token_registry.host, REPOSITORY)


def test_a_credential_helper_gets_its_own_settings_not_our_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A helper (docker-credential-pass, -ecr-login, ...) needs its own variables, never our password or inputs."""
    bin_dir, seen = tmp_path / "bin", tmp_path / "helper-environ"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-spy"
    helper.write_text(f'#!/bin/sh\ncat /proc/$$/environ > "{seen}"\necho \'{{"Username":"u","Secret":"p"}}\'\n')
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    for name, value in {"IMAGE_TAGGER_PASSWORD": "pw-1", "INPUT_PASSWORD": "pw-2", "INPUT_SECRETS": "a=pw-3"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_PROFILE", "ci")
    monkeypatch.setenv("PASSWORD_STORE_DIR", "/store")

    config = write_docker_config(tmp_path / "docker", {"credHelpers": {"ghcr.io": "spy"}})
    assert credentials_for("ghcr.io", config) == RegistryAuth("u", "p")

    environ = dict(item.split("=", 1) for item in seen.read_text().split("\0") if item)
    assert {"AWS_PROFILE": "ci", "PASSWORD_STORE_DIR": "/store"}.items() <= environ.items()
    assert not {"IMAGE_TAGGER_PASSWORD", "INPUT_PASSWORD", "INPUT_SECRETS"} & environ.keys(), environ
