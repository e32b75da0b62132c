#!/usr/bin/env bash
# Regenerate requirements/action.txt, the action image's hash-locked dependencies, from action.in.
# pip-tools runs in a throw-away venv and asks PyPI only (the machine's pip config is ignored).
#   requirements/compile.sh                # same pins, hashes refreshed
#   requirements/compile.sh --upgrade      # newest versions action.in allows
# Hashes cover every file of each pinned release, so the lock installs on CPython 3.12 (the image) and 3.13
# (the tests' stand-in base), manylinux x86_64 and aarch64 alike. PyGithub (the pull-request action's GitHub
# client) is locked with PyNaCl, PyJWT and typing-extensions; cryptography signs releases (edges/signer.py). The
# Dockerfile installs with --no-deps, so exactly the packages listed here land in the image.
set -euo pipefail
cd "$(dirname "$0")"
venv=$(mktemp -d)
trap 'rm -rf "$venv"' EXIT
export PIP_CONFIG_FILE=/dev/null
unset PIP_FIND_LINKS PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_CONSTRAINT
"${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/pip" install --quiet "pip-tools==7.6.2"
CUSTOM_COMPILE_COMMAND="requirements/compile.sh" "$venv/bin/pip-compile" --quiet --generate-hashes --strip-extras \
    --no-emit-index-url --no-emit-find-links "$@" \
    --output-file action.txt action.in
