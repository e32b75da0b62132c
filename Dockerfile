# The action's image. BASE_IMAGE comes first so tests without Docker Hub can substitute a local Python.
ARG BASE_IMAGE=python:3.12-slim
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY pyproject.toml README.md /opt/image-tagger/
COPY src /opt/image-tagger/src
# actions-toolkit drags in PyGithub and its crypto stack (~26 MB); actions_toolkit.core, all we import, uses none of it.
RUN python -m pip install /opt/image-tagger \
    && python -m pip uninstall -y PyGithub PyNaCl PyJWT cryptography cffi pycparser \
    && rm -rf /opt/image-tagger

# Exec form running Python directly: a /bin/sh wrapper would drop the runner's INPUT_MAJOR-VERSION style names.
ENTRYPOINT ["python", "-m", "image_tagger.action"]
