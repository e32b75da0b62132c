"""The stand-in for a kubelet: the demo runs the image a Deployment names, as a container, and reads its page.

There is no kubelet (nor a scheduler or controller-manager) in the demo's clusters: what a Deployment says
is what Flux did. Something has to run the image to show what an environment serves, and, for the real
clusters, to report the Deployment available the way a kubelet and the Deployment controller would
together, so that kustomize-controller's health check (`wait: true` in the example's `apps.yaml`) passes.
"""

from __future__ import annotations

import re
import time
from typing import Any

import docker
import requests

from image_tagger.demo import DemoError, localregistry
from image_tagger.demo.kubeapi import KubeAPI, Ref

PAGE_SECONDS = 20.0


def page_version(client: docker.DockerClient, ref: str) -> str:
    """Pull `ref`, run it, and return the version its page reports; the container is stopped again."""
    client.images.pull(ref)
    port = localregistry.free_port()
    container = client.containers.run(
        ref, command=["-p", f"127.0.0.1:{port}"], network_mode="host", detach=True, remove=True
    )
    try:
        deadline = time.monotonic() + PAGE_SECONDS
        while True:
            try:
                page = requests.get(f"http://127.0.0.1:{port}/", timeout=2).text
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise DemoError(f"{ref} did not serve its page on 127.0.0.1:{port}") from None
                time.sleep(0.2)
    finally:
        container.stop(timeout=2)
    match = re.search(r"version ([^<\s]+)", page)
    return match.group(1) if match else "?"


def report_available(api: KubeAPI, deployment: Ref, obj: dict[str, Any]) -> None:
    """The status a kubelet and the Deployment controller would leave once every replica runs the new image:
    what kstatus (and so kustomize-controller's health check) reads as Current."""
    replicas = obj["spec"].get("replicas", 1)
    status = {
        "observedGeneration": obj["metadata"]["generation"],
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
        ],
    }
    api.merge_patch(deployment, {"status": status}, subresource="status")
