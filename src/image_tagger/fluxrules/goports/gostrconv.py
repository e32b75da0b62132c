"""Go's strconv number parsing (ParseFloat, ParseUint, ParseInt), shared by the policies, semver and YAML."""

from __future__ import annotations

import math
import re

_FLOAT = re.compile(
    r"[+-]?(?:0[xX](?P<hex>[0-9a-fA-F_]*\.?[0-9a-fA-F_]*)[pP][+-]?[0-9][0-9_]*"
    r"|(?P<dec>[0-9_]*\.?[0-9_]*)(?:[eE][+-]?[0-9][0-9_]*)?)"
)
_SPECIAL_FLOAT = re.compile(r"[+-]?(?:inf|infinity)|nan", re.IGNORECASE | re.ASCII)
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def parse_go_float(text: str) -> float:
    """Go strconv.ParseFloat(text, 64): syntax errors and overflow to infinity raise ValueError."""
    if _SPECIAL_FLOAT.fullmatch(text):
        return float(text)
    m = _FLOAT.fullmatch(text)
    mantissa_digits = "0123456789" if m and m["dec"] is not None else _HEX_DIGITS
    if m is None or not any(c in mantissa_digits for c in m["dec"] or m["hex"] or ""):
        raise ValueError(f"invalid syntax: {text!r}")
    if "_" in text and not _underscores_ok(text):
        raise ValueError(f"invalid syntax: {text!r}")
    plain = text.replace("_", "")
    try:
        value = float(plain) if m["dec"] is not None else float.fromhex(plain)
    except OverflowError:
        value = math.inf
    if math.isinf(value):
        raise ValueError(f"value out of range: {text!r}")
    return value


def _underscores_ok(text: str) -> bool:
    """Go underscoreOK: an underscore only between digits, or between the base prefix and a digit."""
    body = text[1:] if text[:1] in ("+", "-") else text
    hexadecimal = body[:2] in ("0x", "0X")
    digits = _HEX_DIGITS if hexadecimal else frozenset("0123456789")
    saw = "0" if hexadecimal else "^"
    for ch in body[2:] if hexadecimal else body:
        if ch in digits:
            saw = "0"
        elif ch == "_":
            if saw != "0":
                return False
            saw = "_"
        elif saw == "_":
            return False
        else:
            saw = "!"
    return saw != "_"


def parse_uint(s: str, base: int) -> int | None:
    """Go strconv.ParseUint(s, base, 64) without underscores (base 0: 0b/0o/0x/0 prefixes); None on error."""
    if not s:
        return None
    if base == 0:
        base = 10
        if s[0] == "0":
            prefix = {"b": 2, "o": 8, "x": 16}.get(s[1:2].lower()) if len(s) >= 3 else None
            base, s = (prefix, s[2:]) if prefix else (8, s[1:])
    value = 0
    for char in s:
        if not char.isascii():  # Go reads bytes: any non-ASCII byte is a syntax error, not a digit
            return None
        lower = char.lower()
        if "0" <= char <= "9":
            digit = ord(char) - ord("0")
        elif "a" <= lower <= "z":
            digit = ord(lower) - ord("a") + 10
        else:
            return None
        if digit >= base:
            return None
        value = value * base + digit
    return value if value < 1 << 64 else None


def parse_int(s: str, base: int) -> int | None:
    """strconv.ParseInt(s, base, 64): optional sign, then ParseUint, within int64."""
    negative = s[:1] == "-"
    magnitude = parse_uint(s[1:] if s[:1] in ("+", "-") else s, base)
    if magnitude is None or magnitude > (1 << 63) - (0 if negative else 1):
        return None
    return -magnitude if negative else magnitude
