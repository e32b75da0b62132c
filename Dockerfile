# The action's image. .github/workflows/release.yml builds it from this file and pushes it; the released
# action.yml runs it as `docker://ghcr.io/flux-ci-cd/flux-ci-cd:<version>@sha256:<digest>`.
# Both base images are build arguments so the tests (no Docker Hub here) can substitute local ones.
# python:3.12-slim, the multi-arch index digest it resolved to as 3.12.14-slim-trixie (2026-09-07).
# Refresh: `docker buildx imagetools inspect python:3.12-slim` (the "Digest:" line, not a per-platform one).
ARG BASE_IMAGE=python:3.12-slim@sha256:78387bc3881b8273120a12ebe6c1ab22b018ccc2c9adf565ae1ac9b536e184ea
# Docker's own image holding the buildx binary at /buildx. NOT digest-pinned yet: no trustworthy digest for the
# 0.29.1 index could be confirmed offline; append `@sha256:<index digest>` from
# `docker buildx imagetools inspect docker/buildx-bin:0.29.1` (tests/test_action_image.py names this gap).
ARG BUILDX_IMAGE=docker/buildx-bin:0.29.1
FROM ${BUILDX_IMAGE} AS buildx

FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# The product runs buildx standalone under its plugin name; BuildKit builds go through it to the mounted daemon.
COPY --from=buildx /buildx /usr/local/bin/docker-buildx

# Exactly the locked packages, verified by hash, none of their undeclared dependencies: the lock leaves out
# cryptography, which PyJWT (under PyGithub) needs only to sign GitHub App tokens, never made here.
COPY requirements/action.txt /opt/image-tagger/requirements/action.txt
RUN python -m pip install --no-deps --require-hashes -r /opt/image-tagger/requirements/action.txt

# The project itself is not pip-installed (no build backend in the image): its sources on PYTHONPATH.
COPY src /opt/image-tagger/src
ENV PYTHONPATH=/opt/image-tagger/src

# Exec form running Python directly: a /bin/sh wrapper would drop the runner's INPUT_MAJOR-VERSION style names.
ENTRYPOINT ["python", "-m", "image_tagger.action"]
