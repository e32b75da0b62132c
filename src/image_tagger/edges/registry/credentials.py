"""Where a registry account comes from: the Docker config a developer already has, its credential
helpers, or the `kubernetes.io/dockerconfigjson` Secret Flux would read.

So a preview needs no extra login. Credential helpers (`credsStore`, `credHelpers`) run as
`docker-credential-<name> get` with only their own settings in the environment; when the helper is not
installed, or knows no entry, the inline `auths` entry is used, else anonymous. OAuth identity tokens
(`identitytoken`, helper user `<token>`) are not supported: anonymous. A bad Docker config or Secret is an
InputError. Apart from `session` because these rules follow docker's CLI and Kubernetes, not the
distribution API: the answer is a RegistryAuth, and nothing here talks to a registry.
"""

from __future__ import annotations

import base64
import binascii
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from image_tagger.edges.childenv import child_env
from image_tagger.model.errors import InputError, PublishError
from image_tagger.model.imagename import DOCKER_HUB, normalise_registry, registry_of_server
from image_tagger.model.registry import RegistryAuth
from image_tagger.rules import jsonlimits

DOCKER_HUB_SERVER_URL = "https://index.docker.io/v1/"
MAX_CONFIG_BYTES = 1 << 20  # a Docker config, a Secret's .dockerconfigjson, a credential helper's answer
_HELPER_TIMEOUT = 30
# What the common docker-credential-* helpers read (pass, secretservice, ecr-login, gcloud, acr-env, osxkeychain
# needs none): their own settings, never the secrets this process holds.
CREDENTIAL_HELPER_ENV = (
    "DOCKER_CONFIG",
    "XDG_RUNTIME_DIR",
    "DBUS_SESSION_BUS_ADDRESS",
    "DISPLAY",
    "GNUPGHOME",
    "GPG_TTY",
    "PASSWORD_STORE_*",
    "AWS_*",
    "AZURE_*",
    "CLOUDSDK_*",
    "GOOGLE_APPLICATION_CREDENTIALS",
)


def docker_config_file(docker_config_dir: Path | None = None) -> Path:
    """The file the docker CLI reads: `config.json` in the given dir, $DOCKER_CONFIG or ~/.docker."""
    directory = docker_config_dir or Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    return Path(directory) / "config.json"


def _config_key_registry(key: str) -> str | None:
    """`https://index.docker.io/v1/` -> `docker.io`; keys that name no registry host match nothing."""
    try:
        return registry_of_server(key)
    except InputError:
        return None


def matching_entry(entries: Mapping[str, Any], registry: str) -> tuple[str, Any] | None:
    """The `(key, value)` of a config map (`auths`, `credHelpers`) whose key names `registry`."""
    return next(((k, v) for k, v in entries.items() if _config_key_registry(k) == registry), None)


def _read_config(path: Path) -> dict[str, Any]:
    try:
        config = jsonlimits.load_file(path, MAX_CONFIG_BYTES)
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
            [binary, "get"],
            input=server_url,
            env=child_env(*CREDENTIAL_HELPER_ENV),
            capture_output=True,
            text=True,
            timeout=_HELPER_TIMEOUT,
        )
        found = jsonlimits.loads(answer.stdout, MAX_CONFIG_BYTES) if answer.returncode == 0 else {}
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
        config = jsonlimits.loads(text, MAX_CONFIG_BYTES) if text else {}
    except ValueError as err:
        raise InputError(f"{name}: .dockerconfigjson is not usable JSON ({err})") from None
    if not isinstance(config, dict):
        raise InputError(f"{name}: .dockerconfigjson is not a JSON object")
    key, entry = matching_entry(config.get("auths") or {}, normalise_registry(registry)) or ("", None)
    return _from_entry(entry, Path(name), key)
