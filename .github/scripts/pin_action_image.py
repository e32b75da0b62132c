#!/usr/bin/env python3
"""Point action.yml's `runs.image` at the Dockerfile or at a released image pinned by digest.

    pin_action_image.py --dockerfile                     # build from this checkout (CI, the release bootstrap)
    pin_action_image.py --image docker://ghcr.io/o/r:1.2.3@sha256:<64 hex>   # the released action

Only the value of the `image:` line under the top-level `runs:` mapping changes; every other byte of the file
(comments, quoting, line endings) stays. Standard library only: it runs on a bare runner before any setup.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

# docker://[host[:port]/]path[:tag]@sha256:<64 hex>: the reference grammar of distribution/reference, digest
# required, because a tag alone can be moved under consumers' feet.
HOST = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?/)"
COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
PINNED = re.compile(rf"docker://{HOST}?{COMPONENT}(?:/{COMPONENT})*(?::[\w][\w.-]{{0,127}})?@sha256:[0-9a-f]{{64}}")
RUNS = re.compile(r"runs:[ \t]*(?:#.*)?\r?\n?")
IMAGE = re.compile(r"(?P<head>[ \t]+image:[ \t]*)(?P<value>[^\r\n#]*?)(?P<tail>[ \t]*(?:#[^\r\n]*)?\r?\n?)")


def indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def pin(text: str, image: str) -> str:
    """`text` with the value of runs.image replaced by `image`; ValueError when that line is not there once."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if RUNS.fullmatch(line)]
    if len(starts) != 1:
        raise ValueError("action.yml must have exactly one top-level `runs:` mapping")
    block = []
    for index in range(starts[0] + 1, len(lines)):
        line = lines[index]
        if line.strip() and not line[0].isspace() and not line.startswith("#"):
            break
        block.append(index)
    keys = [i for i in block if lines[i].strip() and not lines[i].lstrip().startswith("#")]
    child = min((indent(lines[i]) for i in keys), default=0)
    found = [i for i in keys if (m := IMAGE.fullmatch(lines[i])) and indent(lines[i]) == child and m["value"]]
    if len(found) != 1:
        raise ValueError("`runs:` must have exactly one `image:` line with a value")
    match = IMAGE.fullmatch(lines[found[0]])
    lines[found[0]] = f"{match['head']}{image}{match['tail']}"
    return "".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--action", type=Path, default=Path("action.yml"), help="the action.yml to rewrite")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--dockerfile",
        nargs="?",
        const="Dockerfile",
        help="runs.image: the Dockerfile, relative to the action (default Dockerfile; ../Dockerfile for pull-request/)",
    )
    target.add_argument("--image", help="docker://REGISTRY/REPOSITORY[:TAG]@sha256:DIGEST")
    args = parser.parse_args(argv)
    if args.image is not None and not PINNED.fullmatch(args.image):
        parser.error(f"--image must be docker://NAME[:TAG]@sha256:<64 hex digits>, got {args.image!r}")
    image = args.dockerfile or args.image
    try:
        original = args.action.read_bytes().decode("utf-8")
        args.action.write_bytes(pin(original, image).encode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        print(f"pin_action_image: {args.action}: {error}", file=sys.stderr)
        return 1
    print(f"{args.action}: runs.image: {image}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
