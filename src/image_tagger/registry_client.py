"""The registry edge: list an image repository's tags the way Flux's image-reflector-controller sees them.

Names are read like an ImageRepository's `spec.image` (`acme/app` is `docker.io/acme/app`, `alpine`
is `docker.io/library/alpine`). Credentials come from the Docker config a developer already has, so a
preview needs no extra login. Registry failures are one PublishError line naming the registry and
image; a bad image name or Docker config is an InputError.

Credential helpers (`credsStore`, `credHelpers`) run as `docker-credential-<name> get`; when the
helper is not installed, or knows no entry, the inline `auths` entry is used, else anonymous.
OAuth identity tokens (`identitytoken`, helper user `<token>`) are not supported: anonymous.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests

from image_tagger.errors import InputError, PublishError
from image_tagger.imagename import DOCKER_HUB, ImageName, normalise_registry, parse_image

DOCKER_HUB_ENDPOINT = "https://registry-1.docker.io"
DOCKER_HUB_SERVER_URL = "https://index.docker.io/v1/"
PAGE_SIZE = 1000
_HELPER_TIMEOUT = 30
_LOOPBACK_RE = re.compile(r"(?:127(?:\.\d{1,3}){3}|localhost|\[::1\])(?::\d+)?", re.IGNORECASE)
_CHALLENGE_PARAM_RE = re.compile(r'(\w+)=(?:"([^"]*)"|([^\s,]*))')


@dataclass(frozen=True)
class RegistryAuth:
    """One registry account; empty username means anonymous."""

    username: str = ""
    password: str = field(default="", repr=False)

    @property
    def basic(self) -> tuple[str, str] | None:
        return (self.username, self.password) if self.username else None


# --- Docker config -------------------------------------------------------------------------------


def docker_config_file(docker_config_dir: Path | None = None) -> Path:
    """The file the docker CLI reads: `config.json` in the given dir, $DOCKER_CONFIG or ~/.docker."""
    directory = docker_config_dir or Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    return Path(directory) / "config.json"


def _config_key_registry(key: str) -> str | None:
    """`https://index.docker.io/v1/` -> `docker.io`; keys that name no registry host match nothing."""
    host = key.strip().removeprefix("https://").removeprefix("http://").split("/", 1)[0]
    try:
        return normalise_registry(host)
    except InputError:
        return None


def matching_entry(entries: Mapping[str, Any], registry: str) -> tuple[str, Any] | None:
    """The `(key, value)` of a config map (`auths`, `credHelpers`) whose key names `registry`."""
    return next(((k, v) for k, v in entries.items() if _config_key_registry(k) == registry), None)


def _read_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise InputError(f"docker config {path} is unreadable or not JSON ({err}); accepted: a JSON object") from None
    if not isinstance(config, dict):
        raise InputError(f"docker config {path} is not a JSON object")
    return config


def _from_entry(entry: Any, path: Path, key: str) -> RegistryAuth:
    """An `auths` entry: `auth` (base64 user:pass) wins over `username`/`password` fields, as in docker."""
    if not isinstance(entry, dict):
        return RegistryAuth()
    if entry.get("auth"):
        try:
            username, sep, password = base64.b64decode(entry["auth"], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            sep = ""
        if not sep:
            raise InputError(f"docker config {path}: auths[{key!r}].auth is not base64 of user:password")
        return RegistryAuth(username, password)
    return RegistryAuth(entry.get("username") or "", entry.get("password") or "")


def _from_helper(helper: str, server_url: str) -> RegistryAuth:
    """Ask `docker-credential-<helper> get`; missing helper, unknown server or identity token -> anonymous."""
    binary = shutil.which(f"docker-credential-{helper}")
    if binary is None:
        return RegistryAuth()
    try:
        answer = subprocess.run(
            [binary, "get"], input=server_url, capture_output=True, text=True, timeout=_HELPER_TIMEOUT
        )
        found = json.loads(answer.stdout) if answer.returncode == 0 else {}
    except (subprocess.TimeoutExpired, ValueError) as err:
        raise PublishError(f"credential helper docker-credential-{helper} failed for {server_url}: {err}") from None
    if not isinstance(found, dict) or found.get("Username") in (None, "", "<token>"):
        return RegistryAuth()
    return RegistryAuth(str(found["Username"]), str(found.get("Secret") or ""))


def credentials_for(registry: str, docker_config_dir: Path | None = None) -> RegistryAuth:
    """The account the docker CLI would use for `registry` (host[:port]; Docker Hub under any alias)."""
    host = normalise_registry(registry)
    path = docker_config_file(docker_config_dir)
    config = _read_config(path)
    key, entry = matching_entry(config.get("auths") or {}, host) or ("", None)
    _, helper = matching_entry(config.get("credHelpers") or {}, host) or ("", config.get("credsStore"))
    if helper:
        server_url = key or (DOCKER_HUB_SERVER_URL if host == DOCKER_HUB else host)
        found = _from_helper(str(helper), server_url)
        if found.username:
            return found
    return _from_entry(entry, path, key)


def credentials_from_secret(secret: Mapping[str, Any], registry: str) -> RegistryAuth:
    """The account in a `kubernetes.io/dockerconfigjson` Secret (what Flux reads via `spec.secretRef`)."""
    name = f"secret {(secret.get('metadata') or {}).get('name', '?')}"
    data = secret.get("stringData") or {}
    text = data.get(".dockerconfigjson")
    if text is None and (encoded := (secret.get("data") or {}).get(".dockerconfigjson")):
        try:
            text = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise InputError(f"{name}: data[.dockerconfigjson] is not base64") from None
    try:
        config = json.loads(text) if text else {}
    except ValueError:
        raise InputError(f"{name}: .dockerconfigjson is not JSON") from None
    key, entry = matching_entry(config.get("auths") or {}, normalise_registry(registry)) or ("", None)
    return _from_entry(entry, Path(name), key)


# --- Registry API ----------------------------------------------------------------------------------


def registry_endpoint(registry: str) -> str:
    """Base URL of the registry API: Hub's real endpoint, plain http on loopback (as Flux's `insecure`)."""
    if registry == DOCKER_HUB:
        return DOCKER_HUB_ENDPOINT
    scheme = "http" if _LOOPBACK_RE.fullmatch(registry) else "https"
    return f"{scheme}://{registry}"


def tags_url(image: ImageName, page_size: int = PAGE_SIZE) -> str:
    """First page of `GET /v2/<repo>/tags/list`."""
    return f"{registry_endpoint(image.registry)}/v2/{image.path}/tags/list?n={page_size}"


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="...",service="..."` -> ("bearer", {"realm": ..., "service": ...})."""
    scheme, _, params = header.strip().partition(" ")
    return scheme.lower(), {m[1].lower(): m[2] or m[3] for m in _CHALLENGE_PARAM_RE.finditer(params)}


def _reason(err: requests.RequestException) -> str:
    """urllib3 nests the socket error in reprs; the last clause (`[Errno 111] Connection refused`) says it."""
    cause = err.args[0] if err.args else err
    text = str(getattr(cause, "reason", cause))
    return text.rsplit(": ", 1)[-1].strip(" )'\"") or type(err).__name__


@dataclass
class _Session:
    """One listing: the Authorization negotiated on the first 401 is reused for every page."""

    image: ImageName
    auth: RegistryAuth
    timeout: float
    http: requests.Session = field(default_factory=requests.Session)
    authorization: str = ""

    def fail(self, what: str) -> PublishError:
        return PublishError(f"registry {self.image.registry}: {what} (image {self.image.name})")

    def json(self, response: requests.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise self.fail(f"{response.url} returned invalid JSON (expected an object)")
        return body

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        try:
            return self.http.get(url, timeout=self.timeout, **kwargs)
        except requests.Timeout:
            raise self.fail(f"{url} did not answer within {self.timeout:g} s") from None
        except requests.RequestException as err:
            raise self.fail(f"cannot reach {url}: {_reason(err)}") from None

    def fetch(self, url: str) -> requests.Response:
        """GET with the current Authorization; on 401 negotiate once from WWW-Authenticate and retry."""
        response = self._get_authorized(url)
        if response.status_code == 401:
            self.authorization = self._negotiate(response.headers.get("WWW-Authenticate", ""))
            response = self._get_authorized(url)
        if response.status_code == 401:
            raise self._refused()
        if response.status_code == 404:
            raise self.fail(f"no repository {self.image.path} (HTTP 404)")
        if response.status_code != 200:
            raise self.fail(f"HTTP {response.status_code} from {url}: {response.text.strip()[:200]}")
        return response

    def _get_authorized(self, url: str) -> requests.Response:
        headers = {"Authorization": self.authorization} if self.authorization else {}
        return self.get(url, headers=headers)

    def _refused(self) -> PublishError:
        if self.auth.username:
            return self.fail(f"credentials of {self.auth.username!r} were refused (HTTP 401)")
        return self.fail("refused anonymous access (HTTP 401); docker login, or check the repository name")

    def _negotiate(self, challenge: str) -> str:
        scheme, params = parse_challenge(challenge)
        if scheme == "basic" and self.auth.username:
            pair = f"{self.auth.username}:{self.auth.password}".encode()
            return f"Basic {base64.b64encode(pair).decode()}"
        if scheme == "bearer" and params.get("realm"):
            return f"Bearer {self._token(params)}"
        raise self._refused()

    def _token(self, params: dict[str, str]) -> str:
        """The distribution token flow: GET realm?service=&scope=repository:<repo>:pull, basic auth if any."""
        query = {"scope": f"repository:{self.image.path}:pull"}
        if params.get("service"):
            query["service"] = params["service"]
        response = self.get(params["realm"], params=query, auth=self.auth.basic)
        if response.status_code in (401, 403):
            raise self._refused()
        if response.status_code != 200:
            raise self.fail(f"token server {params['realm']} answered HTTP {response.status_code}")
        body = self.json(response)
        token = body.get("token") or body.get("access_token")
        if not isinstance(token, str) or not token:
            raise self.fail(f"token server {params['realm']} returned no token")
        return token


def list_tags(
    image: str, auth: RegistryAuth | None = None, timeout: float = 30, page_size: int = PAGE_SIZE
) -> list[str]:
    """All tags of `image` (an ImageRepository spec.image), following `Link: rel="next"` pages.

    `auth=None` lists anonymously; pass `credentials_for(registry)` to use the Docker config.
    Tags come back in the registry's order (distribution 2.x does not sort them).
    """
    name = parse_image(image)
    session = _Session(name, auth or RegistryAuth(), timeout)
    tags: list[str] = []
    seen: set[str] = set()
    url: str | None = tags_url(name, page_size)
    with session.http:
        while url:
            if url in seen:
                raise session.fail(f"pagination loops back to {url}")
            seen.add(url)
            response = session.fetch(url)
            page = session.json(response).get("tags") or []
            if not isinstance(page, list) or not all(isinstance(tag, str) for tag in page):
                raise session.fail(f"{response.url} returned invalid JSON (tags is not a list of strings)")
            tags.extend(page)
            following = response.links.get("next", {}).get("url")
            url = urljoin(response.url, following) if following else None
    return tags
