"""Image repository names, normalised the way Docker and Flux read them.

`acme/app` is Docker Hub's `docker.io/acme/app`; a registry host in the name or the `registry`
input wins. The name must be a bare repository: tags and digests come from the naming contract.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from image_tagger.model.errors import InputError

DOCKER_HUB = "docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}

# distribution/reference grammar (reference/regexp.go)
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_RE = re.compile(rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?")
_PATH_COMPONENT_RE = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_MAX_NAME = 255

ACCEPTED_REGISTRY = "host[:port], e.g. docker.io, ghcr.io or 127.0.0.1:5000"
ACCEPTED_IMAGE = "a repository name like acme/app, ghcr.io/acme/app or 127.0.0.1:5000/acme/app, without tag or digest"
_LOOPBACK_RE = re.compile(r"(?:127(?:\.\d{1,3}){3}|localhost|\[::1\])(?::\d+)?", re.IGNORECASE)


@dataclass(frozen=True)
class ImageName:
    """A repository on a registry: `registry/path`, e.g. `docker.io/acme/app`."""

    registry: str
    path: str

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.path}"

    def ref(self, tag: str) -> str:
        return f"{self.name}:{tag}"

    @property
    def is_docker_hub(self) -> bool:
        return self.registry == DOCKER_HUB


def plain_http(registry: str) -> bool:
    """Loopback registries are reached over plain http (as Flux's `insecure`, and Docker's default), others over
    https."""
    return bool(_LOOPBACK_RE.fullmatch(registry))


def normalise_registry(registry: str) -> str:
    """Validate a registry host[:port] and fold Docker Hub's aliases into `docker.io`.

    Anything more is refused, never dropped: a scheme (`http://` does not make the registry plain http:
    loopback registries are reached over http, others over https), a path, a user, a port past 65535.
    """
    host = registry.strip()
    if "://" in host:
        scheme = host.split("://", 1)[0]
        raise InputError(
            f"registry {registry!r} carries a scheme ({scheme}://); accepted: {ACCEPTED_REGISTRY} "
            "(loopback registries are reached over http, others over https)"
        )
    if not host or not _DOMAIN_RE.fullmatch(host):
        raise InputError(f"registry {registry!r} is not a registry host; accepted: {ACCEPTED_REGISTRY}")
    port = host.rsplit(":", 1)[1] if not host.endswith("]") and ":" in host else None
    if port is not None and not 1 <= int(port) <= 65535:
        raise InputError(f"registry {registry!r} has port {port}, not 1 to 65535; accepted: {ACCEPTED_REGISTRY}")
    return DOCKER_HUB if host.lower() in _HUB_ALIASES else host


def registry_of_server(server: str) -> str:
    """The registry a Docker config key or a credential helper's ServerURL names (`https://index.docker.io/v1/`
    is `docker.io`): a scheme and a path belong to that form, unlike to the `registry` input."""
    host = server.strip()
    host = host.split("://", 1)[1] if "://" in host else host
    return normalise_registry(host.split("/", 1)[0])


def _has_domain(first: str) -> bool:
    return "." in first or ":" in first or first == "localhost" or first.lower() != first


def parse_image(image: str, registry: str = DOCKER_HUB) -> ImageName:
    """Parse the `image` input; `registry` applies when the name carries no registry host."""
    text = image.strip()
    if not text:
        raise InputError(f"image is empty; accepted: {ACCEPTED_IMAGE}")
    if "://" in text:
        raise InputError(f"image {image!r} carries a scheme; accepted: {ACCEPTED_IMAGE}")
    first, _, rest = text.partition("/")
    if rest and "@" in first:
        raise InputError(f"image {image!r} carries a user; accepted: {ACCEPTED_IMAGE}")
    if "@" in text:
        raise InputError(f"image {image!r} carries a digest; accepted: {ACCEPTED_IMAGE}")
    if rest and _has_domain(first):
        try:
            host, path = normalise_registry(first), rest
        except InputError as err:
            raise InputError(f"image {image!r}: {err}") from None
        default = normalise_registry(registry)
        if default not in (DOCKER_HUB, host):
            raise InputError(f"image {image!r} names registry {host} but registry input is {default}")
    else:
        host, path = normalise_registry(registry), text
    if ":" in path:
        raise InputError(f"image {image!r} carries a tag; accepted: {ACCEPTED_IMAGE}")
    components = path.split("/")
    if not all(_PATH_COMPONENT_RE.fullmatch(c) for c in components):
        raise InputError(f"image {image!r} is not a valid repository name; accepted: {ACCEPTED_IMAGE}")
    if host == DOCKER_HUB and len(components) == 1:
        path = f"library/{path}"
    name = ImageName(host, path)
    if len(name.name) > _MAX_NAME:
        raise InputError(f"image {image!r} is longer than {_MAX_NAME} characters")
    return name
