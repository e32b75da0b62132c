"""A tiny buildable app workspace: what a user's repository looks like to the action (the demo's app)."""

import subprocess
from pathlib import Path

from image_tagger.demo import sampleapp


def git(dest: Path, *args: str) -> str:
    """Run git in `dest` with a fixed identity so commits work on a machine without git config."""
    identity = ["-c", "user.name=Sample Dev", "-c", "user.email=dev@example.invalid", "-c", "init.defaultBranch=main"]
    done = subprocess.run(["git", *identity, *args], cwd=dest, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def make_sample_app(dest: Path) -> str:
    """Write the app into `dest`, commit it once and return the commit sha (local git context for the action)."""
    if sampleapp.static_busybox() is None:
        raise FileNotFoundError("no static busybox (install busybox-static): test images are built FROM scratch")
    sampleapp.write_app(dest)
    git(dest, "init", "--quiet")
    git(dest, "add", "--all")
    git(dest, "commit", "--quiet", "-m", "sample app")
    return git(dest, "rev-parse", "HEAD")
