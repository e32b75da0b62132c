"""A real `docker-registry` (Debian's distribution 2.x) on loopback, with an optional htpasswd account."""

import base64
import hashlib
import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import requests

from image_tagger.demo import localregistry

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
# What a puller accepts, so the registry answers with the digest of the manifest exactly as pushed.
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    )
)


@dataclass(frozen=True)
class Registry:
    """A running registry: where it listens, its one account, and read helpers for assertions."""

    host: str
    username: str
    password: str
    log: Path

    @property
    def auth(self) -> tuple[str, str] | None:
        """HTTP Basic credentials, None for an open registry."""
        return (self.username, self.password) if self.username else None

    def seed(self, repository: str, tags: list[str]) -> str:
        """Push tiny manifests for `tags` (with this registry's account); returns the image name."""
        http = requests.Session()
        http.auth = self.auth
        push_tags(self.host, repository, tags, http)
        return f"{self.host}/{repository}"

    def tags(self, repository: str) -> list[str]:
        """Tags the registry holds for `repository`; [] when it never saw that repository."""
        response = requests.get(f"http://{self.host}/v2/{repository}/tags/list", auth=self.auth, timeout=10)
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return sorted(response.json().get("tags") or [])

    def manifest(self, repository: str, reference: str) -> dict:
        """The manifest (or index) a tag or digest names, as JSON."""
        response = requests.get(
            f"http://{self.host}/v2/{repository}/manifests/{reference}",
            auth=self.auth,
            headers={"Accept": MANIFEST_TYPES},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()

    def labels(self, repository: str, tag: str) -> dict[str, str]:
        """The Labels of the image config `repository:tag` names."""
        blob = self.manifest(repository, tag)["config"]["digest"]
        response = requests.get(f"http://{self.host}/v2/{repository}/blobs/{blob}", auth=self.auth, timeout=10)
        response.raise_for_status()
        return response.json()["config"]["Labels"]

    def open_uploads(self, repository: str) -> int:
        """Blob uploads started in `repository` and neither finished nor ended: distribution keeps each in a folder
        of its storage, with the bytes so far in `data` (an ended one may leave its folder, never its `data`)."""
        folder = self.log.parent / "data" / "docker" / "registry" / "v2" / "repositories" / repository / "_uploads"
        return sum(1 for upload in folder.iterdir() if (upload / "data").exists()) if folder.is_dir() else 0

    def manifest_digest(self, repository: str, tag: str) -> str:
        """The registry's Docker-Content-Digest for `repository:tag`, as a puller would resolve it."""
        response = requests.head(
            f"http://{self.host}/v2/{repository}/manifests/{tag}",
            auth=self.auth,
            headers={"Accept": MANIFEST_TYPES},
            timeout=10,
        )
        response.raise_for_status()
        return response.headers["Docker-Content-Digest"]


def write_htpasswd(path: Path, username: str, password: str) -> Path:
    """A bcrypt entry made by apache2-utils' htpasswd: the only hash distribution's htpasswd auth accepts."""
    entry = subprocess.run(["htpasswd", "-Bbn", username, password], check=True, capture_output=True, text=True)
    path.write_text(entry.stdout.strip() + "\n")
    return path


@contextmanager
def serve_registry(root: Path, username: str = "", password: str = "") -> Iterator[Registry]:
    """The product's registry launcher (image_tagger.demo.localregistry), with one htpasswd account when asked."""
    root.mkdir(parents=True, exist_ok=True)
    auth = localregistry.htpasswd_auth(write_htpasswd(root / "htpasswd", username, password)) if username else ""
    with localregistry.serve(root, auth) as served:
        yield Registry(served.host, username, password, served.log)


OCI_MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPES = {
    MANIFEST_TYPE: "application/vnd.docker.container.image.v1+json",
    OCI_MANIFEST_TYPE: "application/vnd.oci.image.config.v1+json",
}


def push_tags(
    host: str,
    repository: str,
    tags: list[str],
    http: requests.Session,
    config: dict | None = None,
    manifest_type: str = MANIFEST_TYPE,
) -> str:
    """Upload an image config (`{}` unless given) and point each tag at a manifest of it; returns its digest."""
    blob = json.dumps(config).encode() if config is not None else b"{}"
    digest = f"sha256:{hashlib.sha256(blob).hexdigest()}"
    started = http.post(f"http://{host}/v2/{repository}/blobs/uploads/", timeout=10)
    started.raise_for_status()
    upload = urljoin(started.url, started.headers["Location"])
    http.put(upload, params={"digest": digest}, data=blob, timeout=10).raise_for_status()
    manifest = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {"mediaType": CONFIG_TYPES[manifest_type], "size": len(blob), "digest": digest},
        "layers": [],
    }
    pushed = ""
    for tag in tags:
        put = http.put(
            f"http://{host}/v2/{repository}/manifests/{tag}",
            data=json.dumps(manifest).encode(),
            headers={"Content-Type": manifest_type},
            timeout=10,
        )
        put.raise_for_status()
        pushed = put.headers["Docker-Content-Digest"]
    return pushed


def write_docker_config(directory: Path, config: dict) -> Path:
    """A DOCKER_CONFIG folder holding `config` as config.json."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    return directory


def basic_entry(username: str, password: str) -> dict[str, str]:
    """An `auths` entry as `docker login` writes it."""
    return {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()}
