"""How long the daemon may stay silent on one call before we give up on it: a Docker SDK call, or a push that
buildx waits on (IMAGE_TAGGER_DOCKER_TIMEOUT). Apart from docker_ops so that the BuildKit edge reads it without
importing the Docker SDK."""

from __future__ import annotations

import os
from collections.abc import Mapping

from image_tagger.rules.inputs import parse_seconds

TIMEOUT_ENV = "IMAGE_TAGGER_DOCKER_TIMEOUT"
DEFAULT_TIMEOUT = 60.0  # docker.constants.DEFAULT_TIMEOUT_SECONDS
MAX_TIMEOUT = 3600.0


def daemon_timeout(env: Mapping[str, str] = os.environ) -> float:
    """Seconds the daemon may stay silent on one call (IMAGE_TAGGER_DOCKER_TIMEOUT, default the SDK's 60)."""
    return parse_seconds(TIMEOUT_ENV, env.get(TIMEOUT_ENV, ""), DEFAULT_TIMEOUT, 1, MAX_TIMEOUT)
