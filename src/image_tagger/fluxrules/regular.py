"""A regular file of bounded size, read without ever blocking on a FIFO, socket or device.

Apart from files.py (Flux's walk and the all-or-nothing writes, which use it too): the action reads its event file
this way before every build, and needs nothing else of files.py then (issue 17).
"""

import os
import stat
from pathlib import Path


def file_kind(mode: int) -> str:
    """What a file that is not a regular one is, in words."""
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a directory" if stat.S_ISDIR(mode) else "not a regular file"


def read_regular(path: Path, limit: int, follow_symlinks: bool = False) -> tuple[bytes | None, str]:
    """(bytes, "") of a regular file of at most ``limit`` bytes, else (None, why not); never blocks on a FIFO."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow_symlinks else os.O_NOFOLLOW)
    fd = os.open(path, flags)
    with open(fd, "rb") as file:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, f"{file_kind(info.st_mode)}, not a regular file"
        data = file.read(limit + 1) if info.st_size <= limit else b""
    if info.st_size > limit or len(data) > limit:
        size = max(info.st_size, len(data))
        return None, f"{size} bytes, over the {limit}-byte limit (not parsed)"
    return data, ""
