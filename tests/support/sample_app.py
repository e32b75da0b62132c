"""A tiny buildable app workspace: what a user's repository looks like to the action."""

import shutil
import subprocess
from pathlib import Path

BUSYBOX = Path("/bin/busybox")

# FROM scratch keeps the build offline (no base image pull); the static busybox does the one RUN step and
# serves the page, so the built image is also runnable.
DOCKERFILE = """\
FROM scratch
COPY busybox /busybox
COPY index.html /www/index.html
ARG VERSION=dev
LABEL org.opencontainers.image.version=$VERSION
RUN ["/busybox", "sh", "-c", "/busybox sed -i \\"s/@VERSION@/$VERSION/\\" /www/index.html"]
EXPOSE 8080
ENTRYPOINT ["/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]
"""

INDEX_HTML = "<!doctype html>\n<title>sample app</title>\n<p>version @VERSION@</p>\n"


def git(dest: Path, *args: str) -> str:
    """Run git in `dest` with a fixed identity so commits work on a machine without git config."""
    identity = [
        "-c",
        "user.name=Sample Dev",
        "-c",
        "user.email=dev@example.invalid",
        "-c",
        "init.defaultBranch=main",
    ]
    done = subprocess.run(["git", *identity, *args], cwd=dest, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def make_sample_app(dest: Path) -> str:
    """Write the app into `dest`, commit it once (local git context) and return the commit sha."""
    if not BUSYBOX.is_file():
        raise FileNotFoundError(f"{BUSYBOX} missing: install busybox-static")
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, dest / "busybox")
    (dest / "Dockerfile").write_text(DOCKERFILE)
    (dest / "index.html").write_text(INDEX_HTML)
    git(dest, "init", "--quiet")
    git(dest, "add", "--all")
    git(dest, "commit", "--quiet", "-m", "sample app")
    return git(dest, "rev-parse", "HEAD")
