"""The demo's app: a tiny web page that reports the version it was built as.

With a static busybox on the machine (Debian's busybox-static) the image is built FROM scratch,
so no base image has to be pulled; elsewhere it starts from the busybox image.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

PT_INTERP = 3
STATIC_BUSYBOX_CANDIDATES = (Path("/bin/busybox"), Path("/usr/bin/busybox"))

_SCRATCH = """\
FROM scratch
COPY busybox /bin/busybox
"""
_HUB = """\
FROM busybox:1.36
"""
_COMMON = """\
COPY index.html /www/index.html
ARG VERSION=dev
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox sed -i s/@VERSION@/$VERSION/ /www/index.html"]
EXPOSE 8080
ENTRYPOINT ["/bin/busybox", "httpd", "-f", "-h", "/www"]
CMD ["-p", "8080"]
"""
INDEX_HTML = "<!doctype html>\n<title>demo app</title>\n<p>version @VERSION@</p>\n"


def is_static_elf(path: Path) -> bool:
    """True for an ELF executable without a program interpreter, i.e. one that runs FROM scratch."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    if data[:4] != b"\x7fELF" or data[4] != 2:  # 64-bit only
        return False
    endian = "<" if data[5] == 1 else ">"
    (phoff,) = struct.unpack_from(endian + "Q", data, 0x20)
    phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x36)
    types = (struct.unpack_from(endian + "I", data, phoff + i * phentsize)[0] for i in range(phnum))
    return PT_INTERP not in types


def static_busybox() -> Path | None:
    return next((p for p in STATIC_BUSYBOX_CANDIDATES if is_static_elf(p)), None)


def write_app(dest: Path) -> None:
    """Write Dockerfile, page (and busybox when building FROM scratch) into `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    busybox = static_busybox()
    if busybox:
        shutil.copy2(busybox, dest / "busybox")
    (dest / "Dockerfile").write_text((_SCRATCH if busybox else _HUB) + _COMMON)
    (dest / "index.html").write_text(INDEX_HTML)
