"""Filesystem faults a write must survive, made real (both need root): an immutable file and a full disk."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def chattr(flag: str, path: Path) -> None:
    done = subprocess.run(["chattr", flag, str(path)], capture_output=True, text=True)
    assert done.returncode == 0, f"this test needs root and chattr to make a file immutable: {done.stderr}"


@contextmanager
def immutable(*paths: Path) -> Iterator[None]:
    """`chattr +i`: not writable, renamable or deletable, even by root; undone afterwards."""
    for path in paths:
        chattr("+i", path)
    try:
        yield
    finally:
        for path in paths:
            chattr("-i", path)


@contextmanager
def small_disk(directory: Path, size: str = "64k") -> Iterator[Path]:
    """`directory` moved onto a tmpfs of `size` mounted in its place (same path, same contents); unmounted after."""
    saved = directory.with_name(directory.name + ".saved")
    directory.rename(saved)
    directory.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)], capture_output=True
    )
    assert mounted.returncode == 0, f"this test mounts a {size} tmpfs and needs root: {mounted.stderr.decode()}"
    try:
        shutil.copytree(saved, directory, dirs_exist_ok=True)
        yield directory
    finally:
        subprocess.run(["umount", str(directory)], check=True)
        directory.rmdir()
        saved.rename(directory)


def fill(directory: Path, leave: int) -> None:
    """Fill the filesystem of `directory` with a padding file until only `leave` bytes are free."""
    info = os.statvfs(directory)
    free = info.f_bavail * info.f_frsize
    assert free > leave, f"{directory} has only {free} bytes free"
    (directory / "padding.bin").write_bytes(b"\0" * (free - leave))
    info = os.statvfs(directory)
    assert info.f_bavail * info.f_frsize == leave, "the padding did not leave exactly the room asked for"
