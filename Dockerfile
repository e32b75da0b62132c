# The action's image. .github/workflows/release.yml builds it from this file and pushes it; the released
# action.yml runs it as `docker://ghcr.io/flux-ci-cd/flux-ci-cd:<version>@sha256:<digest>`.
# The base is a build argument so the tests (no Docker Hub here) can substitute a local Debian trixie Python.
# python:3.12-slim, the multi-arch index digest it resolved to as 3.12.14-slim-trixie (2026-09-07).
# Refresh: `docker buildx imagetools inspect python:3.12-slim` (the "Digest:" line, not a per-platform one).
ARG BASE_IMAGE=python:3.12-slim@sha256:78387bc3881b8273120a12ebe6c1ab22b018ccc2c9adf565ae1ac9b536e184ea
# buildx from Debian trixie (python:3.12-slim's own distribution), pinned by package version: unpacked in a
# stage of its own, so the image installs nothing it then removes and needs no registry but the base's.
FROM ${BASE_IMAGE} AS buildx
ARG BUILDX_DEB=0.13.1+ds1-3
RUN cd /tmp && apt-get update -q && apt-get download -q "docker-buildx=${BUILDX_DEB}" \
    && dpkg-deb -x docker-buildx_*.deb /unpacked

FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# The product runs buildx standalone under its plugin name; BuildKit builds go through it to the mounted daemon.
COPY --from=buildx /unpacked/usr/libexec/docker/cli-plugins/docker-buildx /usr/local/bin/docker-buildx

# Exactly the locked packages, verified by hash, none of their undeclared dependencies: the lock leaves out
# cryptography, which PyJWT (under PyGithub) needs only to sign GitHub App tokens, never made here.
COPY requirements/action.txt /opt/image-tagger/requirements/action.txt
RUN python -m pip install --no-deps --require-hashes -r /opt/image-tagger/requirements/action.txt

# The project itself is not pip-installed (no build backend in the image): its sources on PYTHONPATH.
COPY src /opt/image-tagger/src
ENV PYTHONPATH=/opt/image-tagger/src

# Exec form running Python directly: a /bin/sh wrapper would drop the runner's INPUT_MAJOR-VERSION style names.
ENTRYPOINT ["python", "-m", "image_tagger.entry.action"]
