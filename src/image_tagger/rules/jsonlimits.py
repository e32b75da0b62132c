"""JSON from outside (the event file, registry and API answers, Docker configs) through one bounded loader.

`json.loads` takes any size and recurses per nesting level: `[[[[…` thousands deep ends in a
RecursionError, a traceback. `loads` refuses more than `max_bytes` and nesting deeper than
`MAX_DEPTH` with a JSONError (a ValueError) that says which; each edge names its source in its own
error kind: exit 2 for the event file and the user's files, a PublishError naming the server for
answers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from image_tagger.fluxrules.regular import read_regular
from image_tagger.model.errors import JSONError

MAX_DEPTH = 100  # nested arrays and objects; webhook events, manifests and API answers use about ten


def loads(data: bytes | str, max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """The value of a JSON document of at most `max_bytes` bytes and `max_depth` levels, else JSONError."""
    size = len(data.encode("utf-8", "surrogatepass")) if isinstance(data, str) else len(data)
    if size > max_bytes:
        raise JSONError(f"{size} bytes, over the {max_bytes}-byte limit for JSON")
    try:
        value = json.loads(data)
    except RecursionError:  # deeper than the interpreter's recursion limit: deeper than ours too
        raise JSONError(f"JSON nested deeper than {max_depth} levels") from None
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError
        raise JSONError(str(err)) from None
    if _deeper_than(value, max_depth):
        raise JSONError(f"JSON nested deeper than {max_depth} levels")
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest deeper than `limit`: level by level, without recursion (json.loads
    gives exact dicts and lists; 3 million small arrays take about 2 s, less than decoding them)."""
    level = [value] if type(value) in (dict, list) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below: list[Any] = []
        for item in level:
            below += [c for c in (item.values() if type(item) is dict else item) if type(c) in (dict, list)]
        level = below
    return False


def load_file(path: Path, max_bytes: int) -> Any:
    """A JSON file: a regular file (a FIFO is never opened) of at most `max_bytes`; OSError if it cannot be opened."""
    data, why = read_regular(path.resolve(), max_bytes)  # a symlinked file is read where it leads
    if data is None:
        raise JSONError(why)
    return loads(data, max_bytes)
