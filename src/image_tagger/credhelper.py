"""A Docker credential helper that answers from this process tree's memory, never from a file.

buildx reads registry credentials only through the Docker config; a config with `auths` would put
the password on disk. Instead the BuildKit edge writes a config naming this helper
(`credHelpers`), and hands the credentials to the buildx process in one environment variable that
buildx passes on to its helper. The protocol: `get` with the server URL on stdin, JSON out.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping

from image_tagger.errors import InputError
from image_tagger.imagename import DOCKER_HUB, registry_of_server

ENV = "IMAGE_TAGGER_REGISTRY_AUTH"
NAME = "image-tagger"
# The keys under which Docker's config code asks for Docker Hub's credentials.
HUB_KEYS = ("docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/")


def config_keys(registry: str) -> tuple[str, ...]:
    """credHelpers keys that route `registry` to this helper."""
    return HUB_KEYS if registry == DOCKER_HUB else (registry,)


def lookup(server: str, auth: Mapping[str, list[str]]) -> tuple[str, str] | None:
    try:
        host = registry_of_server(server)
    except InputError:
        return None
    found = auth.get(host)
    return (found[0], found[1]) if found else None


def main(argv: list[str] | None = None) -> int:
    action = (argv if argv is not None else sys.argv[1:] or [""])[0]
    if action in ("store", "erase"):
        sys.stdin.read()
        return 0
    if action == "list":
        print("{}")
        return 0
    if action != "get":
        print(f"{NAME}: unknown action {action!r}; accepted: get | store | erase | list", file=sys.stderr)
        return 2
    server = sys.stdin.read().strip()
    found = lookup(server, json.loads(os.environ.get(ENV) or "{}"))
    if found is None:
        print("credentials not found in native keychain")
        return 1
    print(json.dumps({"ServerURL": server, "Username": found[0], "Secret": found[1]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
