"""go-yaml's implicit scalar typing, reproduced so setter output is quoted exactly like Flux's.

Flux (kyaml ``FormatNonStringStyle``) double-quotes a new setter value when go-yaml **v2** (YAML 1.1)
would unmarshal it as something other than a string, and go-yaml **v3** decides at write time whether
a kept tag must be spelled out (``!!float 1.1.0``).  Both libraries share one resolver; v3 only drops
the YAML 1.1 bool spellings (``yes``/``on``/``y``...) and adds the ``0o`` octal fallback.
"""

import calendar
import re

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import AliasEvent, DocumentEndEvent, ScalarEvent

from image_tagger.fluxrules.goports.gostrconv import parse_go_float, parse_int, parse_uint

STR, BOOL, INT, FLOAT, NULL, TIMESTAMP = "!!str", "!!bool", "!!int", "!!float", "!!null", "!!timestamp"
_LONG_TAG_PREFIX = "tag:yaml.org,2002:"

_BOOLS_V3 = {"true", "True", "TRUE", "false", "False", "FALSE"}
_BOOLS_V2 = _BOOLS_V3 | {"y", "Y", "yes", "Yes", "YES", "on", "On", "ON"}
_BOOLS_V2 |= {"n", "N", "no", "No", "NO", "off", "Off", "OFF"}
_NULLS = {"", "~", "null", "Null", "NULL"}
_FLOAT_WORDS = {".nan", ".NaN", ".NAN"} | {sign + word for sign in ("", "+", "-") for word in (".inf", ".Inf", ".INF")}
_RESOLVABLE = {"", STR, BOOL, INT, FLOAT, TIMESTAMP}
# go-yaml's first-character hints: S=sign, D=digit, M=may be in the word map, "."=float.
_HINTS = {"+": "S", "-": "S", ".": "."} | dict.fromkeys("0123456789", "D") | dict.fromkeys("yYnNtTfFoO~", "M")

_YAML_STYLE_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_DOT_FLOAT = re.compile(r"\.[0-9_]+([eE][-+]?[0-9][0-9_]*)?")  # Go ParseFloat grammar for a leading "."
_TIMESTAMP = re.compile(
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{1,2})-(?P<d>[0-9]{1,2})"
    r"(?:(?P<sep>[Tt ])(?P<h>[0-9]{1,2}):(?P<mi>[0-9]{1,2}):(?P<s>[0-9]{1,2})(?:[.,][0-9]+)?"
    r"(?P<tz>Z|[-+](?P<tzh>[0-9]{2}):(?P<tzm>[0-9]{2}))?)?"
)
_PARSER = YAML(typ="safe", pure=True)


def _parses_as_float(text: str) -> bool:
    try:
        parse_go_float(text)
    except ValueError:
        return False
    return True


def _is_timestamp(value: str) -> bool:
    """go-yaml's parseTimestamp: one of four Go time layouts, with Go's range checks."""
    match = _TIMESTAMP.fullmatch(value)
    if not match:
        return False
    year, month, day = int(match["y"]), int(match["mo"]), int(match["d"])
    if not 1 <= month <= 12 or not 1 <= day <= calendar.monthrange(year, month)[1]:
        return False
    if match["sep"] is None:
        return True
    if (match["tz"] is None) == (match["sep"] in "Tt"):  # T/t layouts need a zone, the " " one forbids it
        return False
    if int(match["h"]) > 23 or int(match["mi"]) > 59 or int(match["s"]) > 59:
        return False
    return match["tzh"] is None or (int(match["tzh"]) <= 24 and int(match["tzm"]) <= 60)


def _resolve_number(value: str, tag: str, v3: bool) -> str:
    """The digit/sign branch of go-yaml's resolve."""
    if tag in ("", TIMESTAMP) and _is_timestamp(value):
        return TIMESTAMP
    plain = value.replace("_", "")
    if parse_int(plain, 0) is not None or parse_uint(plain, 0) is not None:
        return INT
    if _YAML_STYLE_FLOAT.fullmatch(plain) and _parses_as_float(plain):
        return FLOAT
    for prefix, base in (("0b", 2), ("0o", 8)) if v3 else (("0b", 2),):
        if plain.startswith(prefix):
            digits = plain[2:]
            if parse_int(digits, base) is not None or parse_uint(digits, base) is not None:
                return INT
        elif plain.startswith("-" + prefix) and parse_int("-" + plain[3:], base) is not None:
            return INT
    return STR


def resolve(value: str, tag: str = "", *, v3: bool = False) -> str:
    """go-yaml's ``resolve(tag, value)``: the short tag a scalar gets; ValueError where go-yaml fails.

    ``tag`` is an explicit short tag (``!!int``) or "" for an untagged plain scalar.
    """
    if tag not in _RESOLVABLE:
        return tag
    resolved = STR
    hint = _HINTS.get(value[:1], "N" if value == "" else "")
    if hint and tag != STR:
        if value in (_BOOLS_V3 if v3 else _BOOLS_V2):
            resolved = BOOL
        elif value in _NULLS:
            resolved = NULL
        elif value in _FLOAT_WORDS:
            resolved = FLOAT
        elif hint == ".":
            if _DOT_FLOAT.fullmatch(value) and _parses_as_float(value):
                resolved = FLOAT
        elif hint in "DS":
            resolved = _resolve_number(value, tag, v3)
    if tag in ("", resolved, STR) or (tag == FLOAT and resolved == INT):
        return tag if tag == FLOAT else resolved
    raise ValueError(f"cannot decode {resolved} {value!r} as a {tag}")


def short_tag(tag: str) -> str:
    """``tag:yaml.org,2002:int`` -> ``!!int``; other tags unchanged."""
    return "!!" + tag[len(_LONG_TAG_PREFIX) :] if tag.startswith(_LONG_TAG_PREFIX) else tag


def is_non_string(value: str) -> bool:
    """kyaml ``IsValueNonString``: would ``yaml.v2.Unmarshal(value)`` into ``interface{}`` not be a string?

    The whole value is decoded as a YAML document, so ``a: b`` (map), ``- x`` and ``-`` (sequences) and
    ``# x`` (empty document -> nil) count as non-strings; a document that fails to parse counts as a string.
    Timestamps decode to strings in go-yaml v2.
    """
    if value == "" or "\n" in value:
        return False
    try:
        events = list(_PARSER.parse(value))
    except YAMLError:
        return False
    if len(events) < 3 or isinstance(events[2], DocumentEndEvent):
        return True  # no document, or an empty one: nil
    root = events[2]  # after StreamStart, DocumentStart
    if isinstance(root, AliasEvent):
        return False  # unknown anchor: go-yaml errors
    if not isinstance(root, ScalarEvent):
        return True
    if root.tag is None:
        return root.style is None and resolve(root.value) in (BOOL, INT, FLOAT, NULL)
    try:
        return resolve(root.value, short_tag(str(root.tag))) in (BOOL, INT, FLOAT)
    except ValueError:
        return False
