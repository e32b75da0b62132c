"""The few calls the demo makes to a local cluster's API server: read an object, apply one, write a status.

The demo polls Deployments and Flux objects every tenth of a second while it waits for Flux, so it talks
HTTP to the API server itself instead of starting a kubectl per look. Every call has a deadline over the
whole exchange and a size limit on the answer (`httpbounds`); the bearer token stays in this object.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from ruamel.yaml import YAML

from image_tagger.demo import DemoError
from image_tagger.edges.httpbounds import bounded_session

TIMEOUT = 10.0  # seconds for one call, connect to last byte
MAX_ANSWER = 4 * 1024 * 1024
FIELD_MANAGER = "image-tagger-demo"

# kind -> (API path prefix, plural) for the kinds the demo reads or writes.
RESOURCES = {
    "Secret": ("/api/v1", "secrets"),
    "Deployment": ("/apis/apps/v1", "deployments"),
    "GitRepository": ("/apis/source.toolkit.fluxcd.io/v1", "gitrepositories"),
    "Kustomization": ("/apis/kustomize.toolkit.fluxcd.io/v1", "kustomizations"),
    "ImageRepository": ("/apis/image.toolkit.fluxcd.io/v1", "imagerepositories"),
    "ImagePolicy": ("/apis/image.toolkit.fluxcd.io/v1", "imagepolicies"),
    "ImageUpdateAutomation": ("/apis/image.toolkit.fluxcd.io/v1", "imageupdateautomations"),
    "Receiver": ("/apis/notification.toolkit.fluxcd.io/v1", "receivers"),
}


@dataclass(frozen=True)
class Ref:
    kind: str
    namespace: str
    name: str

    def path(self, subresource: str = "") -> str:
        prefix, plural = RESOURCES[self.kind]
        return f"{prefix}/namespaces/{self.namespace}/{plural}/{self.name}" + (f"/{subresource}" if subresource else "")

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


class KubeAPI:
    """One cluster's API server, reached with the kubeconfig `cluster.up` wrote (its CA, its admin token)."""

    def __init__(self, kubeconfig: Path) -> None:
        config = YAML(typ="safe").load(kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        self.server = cluster["server"]
        self._http = bounded_session(lambda: TIMEOUT, MAX_ANSWER)
        # Not the environment's CA bundle or proxies (requests lets REQUESTS_CA_BUNDLE override a session's
        # `verify`): the API server's own CA, reached directly on loopback.
        self._http.trust_env = False
        self._http.verify = cluster["certificate-authority"]
        self._http.headers["Authorization"] = f"Bearer {config['users'][0]['user']['token']}"

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, self.server + path, timeout=TIMEOUT, **kwargs)
        except requests.RequestException as err:
            raise DemoError(f"{self.server} did not answer {method} {path} ({type(err).__name__})") from None
        if response.status_code == 404 and method == "GET":
            return None
        if not response.ok:
            reason = response.text[:300].replace("\n", " ")
            raise DemoError(f"{self.server} answered {response.status_code} to {method} {path}: {reason}")
        return response.json()

    def get(self, ref: Ref) -> dict[str, Any] | None:
        """The object, None when it does not exist (yet)."""
        return self._call("GET", ref.path())

    def version(self) -> str:
        return str(self._call("GET", "/version")["gitVersion"])

    def apply(self, obj: dict[str, Any]) -> None:
        """Server-side apply, as `kubectl apply --server-side --force-conflicts` does."""
        meta = obj["metadata"]
        ref = Ref(obj["kind"], meta["namespace"], meta["name"])
        self._call(
            "PATCH",
            ref.path(),
            params={"fieldManager": FIELD_MANAGER, "force": "true"},
            data=json.dumps(obj),
            headers={"Content-Type": "application/apply-patch+yaml"},
        )

    def merge_patch(self, ref: Ref, patch: dict[str, Any], subresource: str = "") -> None:
        self._call(
            "PATCH",
            ref.path(subresource),
            data=json.dumps(patch),
            headers={"Content-Type": "application/merge-patch+json"},
        )
