"""go-yaml v3 scalar model: what kyaml's setter does to a scalar node and how the encoder prints it.

Only block-context scalars are modelled (the setters never touch flow collections), and the encoder
never folds lines (Flux's encoder does not wrap).
"""

from dataclasses import dataclass, replace

from ruamel.yaml.events import ScalarEvent

from image_tagger.fluxrules.goports.yaml11 import NULL, STR, is_non_string, resolve, short_tag

_QUOTED = ("'", '"')
BLOCK = ("|", ">")
_DOUBLE_ESCAPES = {
    "\0": "0", "\a": "a", "\b": "b", "\t": "t", "\n": "n", "\v": "v", "\f": "f", "\r": "r",
    "\x1b": "e", '"': '"', "\\": "\\", "\x85": "N", "\u2028": "L", "\u2029": "P",
}  # fmt: skip


@dataclass(frozen=True)
class Scalar:
    value: str
    style: str  # "" plain, "'", '"', "|", ">"
    tag: str  # short tag as go-yaml v3 holds it
    tagged: bool  # the tag was written in the source (v3 TaggedStyle): always printed


def source_scalar(event: ScalarEvent) -> Scalar:
    """The node go-yaml v3 decodes from the source scalar (its resolved tag unless one is written)."""
    style = event.style or ""
    if event.tag not in (None, "!"):
        return Scalar(event.value, style, short_tag(str(event.tag)), True)
    return Scalar(event.value, style, STR if style else resolve(event.value, v3=True), False)


def set_value(node: Scalar, value: str) -> Scalar:
    """kyaml: assign the value, then ``FormatNonStringStyle`` for a string setter (docs/flux-semantics.md §5.6)."""
    if not is_non_string(value):
        return replace(node, value=value)
    if node.tag == NULL:
        return replace(node, value=value, style="", tagged=False)
    quoted = node.style in _QUOTED
    return Scalar(value, node.style if quoted else '"', STR, node.tagged and quoted)


@dataclass(frozen=True)
class _Analysis:
    block_plain: bool
    single_quoted: bool
    block: bool


def _printable(char: str) -> bool:
    """go-yaml's is_printable: no C0/C1 controls, surrogates, BOM or characters beyond the BMP."""
    code = ord(char)
    return code == 0x0A or 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD and code != 0xFEFF


def _analyse(value: str) -> _Analysis:
    """go-yaml v3 ``yaml_emitter_analyze_scalar`` for block context."""
    if not value:
        return _Analysis(True, True, False)
    indicators = value[:3] in ("---", "...") or value[0] in "#,[]{}&*!|>'\"%@`"
    indicators |= value[0] in "?:-" and value[1:2] in ("", " ", "\t")
    indicators |= ": " in value or ":\t" in value or value.endswith(":")
    indicators |= any(blank + "#" in value for blank in " \t\n")
    special = any(not _printable(c) and c != "\t" for c in value)
    breaks = "\n" in value
    edge_space = value[0] in " \n" or value[-1] in " \n"
    space_break = " \n" in value
    break_space = "\n " in value
    plain = not (edge_space or break_space or space_break or "\t" in value or special or breaks or indicators)
    single = not (break_space or space_break or "\t" in value or special)
    return _Analysis(plain, single, not (value[-1] == " " or space_break or special))


def _double_quoted(value: str) -> str:
    """go-yaml v3 double-quoted scalar (no line folding: Flux's encoder does not wrap)."""
    out = []
    for char in value:
        if _printable(char) and char not in '"\\\n\u2028\u2029':
            out.append(char)
        elif char in _DOUBLE_ESCAPES:
            out.append("\\" + _DOUBLE_ESCAPES[char])
        else:
            code = ord(char)
            out.append(f"\\x{code:02X}" if code <= 0xFF else f"\\u{code:04X}" if code <= 0xFFFF else f"\\U{code:08X}")
    return '"' + "".join(out) + '"'


def emit(node: Scalar) -> tuple[str, str, str]:
    """(tag text, style, scalar text) the go-yaml v3 encoder writes for a block-context scalar."""
    tag, force_quotes = node.tag, False
    if not node.tagged:
        if tag == STR and node.style or resolve(node.value, v3=True) == tag:
            tag = ""
        elif tag == STR:
            tag, force_quotes = "", True
    style = node.style or ("|" if "\n" in node.value else '"' if force_quotes else "")
    analysis = _analyse(node.value)
    if style == "" and not analysis.block_plain:
        style = "'"
    if style == "'" and not analysis.single_quoted or style in BLOCK and not analysis.block:
        style = '"'
    text = {
        "": node.value,
        "'": "'" + node.value.replace("'", "''") + "'",
        '"': _double_quoted(node.value),
    }.get(style, node.value)
    return (tag if tag.startswith("!") else f"!<{tag}>") if tag else "", style, text
