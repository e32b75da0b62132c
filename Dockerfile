# The action's image. .github/workflows/release.yml builds it from this file and pushes it; the released
# action.yml runs it as `docker://ghcr.io/flux-ci-cd/flux-ci-cd:<version>@sha256:<digest>`.
# The base is a build argument so the tests (no Docker Hub here) can substitute a local Debian trixie Python.
# python:3.12-slim, the multi-arch index digest it resolved to as 3.12.14-slim-trixie (2026-09-07).
# Refresh: `docker buildx imagetools inspect python:3.12-slim` (the "Digest:" line, not a per-platform one).
ARG BASE_IMAGE=python:3.12-slim@sha256:78387bc3881b8273120a12ebe6c1ab22b018ccc2c9adf565ae1ac9b536e184ea

# buildx from Debian's own archive, pinned by package version: a current buildx (trixie ships 0.13.1, from
# early 2024), the same one ./dev runs the host tests with (ENGINE28_PINS). Debian's build is stripped and
# needs glibc 2.34, which trixie has. Unpacked in a stage of its own: the image installs nothing it removes.
# From a dated snapshot of the archive: sid moves on and drops old versions within weeks, a snapshot keeps them.
# Refresh: `apt-cache policy docker-buildx` against sid, the snapshot's date, and the pin in ./dev with them.
FROM ${BASE_IMAGE} AS buildx
ARG BUILDX_DEB=0.29.1+ds1-4
ARG DEBIAN_ARCHIVE=https://snapshot.debian.org/archive/debian/20261201T000000Z
RUN echo "deb ${DEBIAN_ARCHIVE} sid main" >/etc/apt/sources.list.d/buildx-sid.list \
    && cd /tmp && apt-get update -q -o Acquire::Check-Valid-Until=false \
    && apt-get download -q "docker-buildx=${BUILDX_DEB}" \
    && dpkg-deb -x docker-buildx_*.deb /unpacked

# The locked packages installed with the base's pip, our sources beside them; image/slim.sh then copies to /slim
# only what the action runs (the interpreter, its libraries, the packages), byte-compiled.
FROM ${BASE_IMAGE} AS runtime
# Exactly the locked packages, verified by hash, none of their undeclared dependencies.
COPY requirements/action.txt /opt/image-tagger/requirements/action.txt
RUN PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore \
    python -m pip install --no-deps --require-hashes -r /opt/image-tagger/requirements/action.txt
# The project itself is not pip-installed (no build backend in the image): its sources on PYTHONPATH.
COPY src /opt/image-tagger/src
COPY image/slim.sh /tmp/slim.sh
RUN sh /tmp/slim.sh

# One layer holding that tree (files removed in a layer on top of the base would still be in the image).
FROM scratch
COPY --from=runtime /slim /
# The product runs buildx standalone under its plugin name; BuildKit builds go through it to the mounted daemon.
COPY --from=buildx /unpacked/usr/libexec/docker/cli-plugins/docker-buildx /usr/local/bin/docker-buildx

# What the base's image config said (FROM scratch starts without it), and ours.
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/opt/image-tagger/src

# Exec form running Python directly: a /bin/sh wrapper would drop the runner's INPUT_MAJOR-VERSION style names.
ENTRYPOINT ["python", "-m", "image_tagger.entry.action"]
