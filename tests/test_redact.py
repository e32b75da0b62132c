"""The one redaction and the line neutraliser every sink uses (no daemon, no network)."""

from __future__ import annotations

import base64
import io
import json
from urllib.parse import quote, quote_plus

from hypothesis import given
from hypothesis import strategies as st

from image_tagger.rules.redact import (
    REDACTED,
    Redactor,
    SafeStream,
    escape_controls,
    is_one_line,
    one_line,
    safe_lines,
    url_forms,
)

# What a user name or password may hold: anything on one line (printable, unicode, `%`, `:`, quotes, `=`).
one_line_text = st.text(st.characters(blacklist_categories=("Cc", "Zl", "Zp", "Cs")), min_size=1, max_size=24)
secrets = one_line_text.filter(lambda s: s.strip() == s and len(s) >= 3)
usernames = one_line_text.filter(lambda s: ":" not in s and s.strip() == s)


def forms(username: str, password: str) -> list[str]:
    pair = f"{username}:{password}"
    encoded = [base64.b64encode(pair.encode()).decode(), base64.urlsafe_b64encode(pair.encode()).decode()]
    plain = [password, pair, *encoded, *(e.rstrip("=") for e in encoded)]
    plain += [quote(password, safe=""), quote_plus(password), quote(pair, safe=""), quote_plus(pair)]
    return plain + [json.dumps(form)[1:-1] for form in plain]


def hidden(form: str, text: str) -> bool:
    """No stretch of `text` between two redaction marks holds `form`."""
    return all(form not in piece for piece in text.split(REDACTED))


@given(usernames, secrets, st.text(max_size=20), st.data())
def test_every_echoed_form_of_a_login_is_redacted(username: str, password: str, noise: str, data) -> None:
    redactor = Redactor()
    redactor.add_login(username, password)
    for form in forms(username, password):
        around = data.draw(st.tuples(st.text(max_size=8), st.text(max_size=8)))
        text = f"{around[0]}{noise}{form}{around[1]}"
        assert hidden(form, redactor(text)), (form, redactor(text))
        assert hidden(password, redactor(text)) or password in REDACTED


@given(st.lists(secrets, min_size=1, max_size=4), st.text(max_size=30))
def test_each_line_of_a_build_secret_is_redacted_on_its_own(lines: list[str], noise: str) -> None:
    redactor = Redactor()
    redactor.add_build_secrets("\n".join(f"id{i}={line}" for i, line in enumerate(lines)))
    for line in lines:
        assert hidden(line, redactor(f"{noise}{line}{noise}"))
        assert hidden(quote_plus(line), redactor(f"{noise} {quote_plus(line)} {noise}"))


@given(st.text(st.characters(blacklist_categories=("Cs",))))
def test_url_forms_are_urllibs_quote_and_quote_plus(value: str) -> None:
    """The redactor's own percent-encoding (urllib.parse stays out of the start-up) writes exactly urllib's forms."""
    assert url_forms(value) == (quote(value, safe=""), quote_plus(value))


def test_a_pasted_secret_line_and_a_multi_line_value() -> None:
    redactor = Redactor()
    redactor.add_build_secrets("not-id-value-but-a-key\nkey=-----BEGIN-----\n")
    redactor.add_secret("line one\n  line two  \n\n")
    text = redactor("a not-id-value-but-a-key b -----BEGIN----- c line one d line two e")
    assert text == "a [redacted] b [redacted] c [redacted] d [redacted] e"


def test_overlapping_secrets_are_hidden_whole_and_credential_words_too() -> None:
    redactor = Redactor()
    redactor.add_secret("abcdef")
    redactor.add_secret("defghi")
    assert redactor("x abcdefghi y") == "x [redacted] y"
    assert redactor("Authorization: Bearer eyJhbGciOi.x.y and basic Zm9vOmJhcg==") == (
        "Authorization: Bearer [redacted] and basic [redacted]"
    )
    assert Redactor()("nothing secret") == "nothing secret"


pieces = st.sampled_from(["\n", "\r", "\x1b", "\x00", "\x7f", "\x85", "\u2028", "::", "##[", " ", "\t", "a"])
control_text = st.lists(st.one_of(pieces, st.text(max_size=4)), max_size=20).map("".join)


@given(control_text)
def test_no_line_made_safe_can_start_a_command_or_hold_a_control(text: str) -> None:
    safe = one_line(text)
    assert is_one_line(safe.replace("\t", " "))
    assert not safe.lstrip().startswith(("::", "##["))
    for line in safe_lines(text).split("\n"):
        assert is_one_line(line.replace("\t", " ")) and not line.lstrip().startswith(("::", "##["))


def test_controls_are_escaped_visibly() -> None:
    assert one_line("zzz\x1b[31m\n::warning::X") == "zzz\\x1b[31m\\n::warning::X"
    assert one_line("  ::error::X") == "  \\x3a:error::X"
    assert one_line("##[error]X") == "\\x23#[error]X"
    assert escape_controls("a\u2028b\u202ec\x9bd\tf\ng", keep="\n") == "a\\u2028b\\u202ec\\x9bd\tf\ng"
    assert safe_lines("ok\r\n::set-output name=x::y\rz") == "ok\n\\x3a:set-output name=x::y\\rz"


@given(st.lists(st.text(max_size=12), max_size=12))
def test_a_safe_stream_cleans_whole_lines_however_the_writes_split_them(pieces: list[str]) -> None:
    redactor = Redactor()
    redactor.add_secret("s3cr3t-value")
    raw = io.StringIO()
    stream = SafeStream(raw, lambda line: safe_lines(redactor(line)))
    for piece in [*pieces, "s3cr", "3t-value\n", "::warning::X\n"]:
        stream.write(piece)
    stream.finish()
    expected = "".join(pieces) + "s3cr3t-value\n::warning::X\n"
    assert raw.getvalue() == "\n".join(safe_lines(redactor(line)) for line in expected.split("\n"))
    assert "s3cr3t-value" not in raw.getvalue()


def test_a_command_written_past_the_cleaning_starts_its_own_line() -> None:
    raw = io.StringIO()
    stream = SafeStream(raw, one_line)
    stream.write("partial ::x")
    stream.command("::group::title")
    stream.write("::warning::y\n")
    assert raw.getvalue() == "partial ::x\n::group::title\n\\x3a:warning::y\n"
