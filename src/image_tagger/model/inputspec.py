"""One declaration per action input, the single source of action.yml's inputs, their parsing defaults, which of
them are masked, `image-tagger publish`'s flags and help, and the README's input table (tools/gen_inputs.py
writes the two files), so that none of them can drift from the others."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """The shape of an input's text: it decides the one-line check and the CLI flag's form."""

    TEXT = "text"  # one line
    CHOICE = "choice"  # one line, one of `choices` in any case
    BOOL = "bool"  # true or false in any case; the flag alone means true
    LINES = "lines"  # one item per line (some also take commas); the flag is repeatable


class Mask(StrEnum):
    """How a secret input is masked, from its raw text (so a refused value is masked too)."""

    LINES = "lines"  # each line on its own: a token, or one token per line
    LOGIN = "login"  # a registry password: also user:password and its encodings (the user from input `user`)
    ID_VALUES = "id=value"  # build secrets: the value of each id=value line


@dataclass(frozen=True)
class InputSpec:
    """One input. `description` is action.yml's (and the CLI help's); `meaning` is the README's longer text."""

    name: str
    description: str
    meaning: str
    default: str = ""
    required: bool = False
    kind: Kind = Kind.TEXT
    choices: tuple[str, ...] = ()
    empty: str = ""  # what an empty value stands for, for the README's default column: `<context>/Dockerfile`
    secret: Mask | None = None  # secrets never travel as a flag's value: `cli` says how the CLI takes one
    user: str = ""  # Mask.LOGIN: the input that names the account
    cli: str = ""  # a secret's way into `image-tagger publish`, e.g. "IMAGE_TAGGER_PASSWORD or --password-stdin"
    env: str = ""  # the environment variable `image-tagger publish` reads a secret from
    naming: bool = False  # read by the naming contract: a flag of `image-tagger tags` too

    @property
    def one_line(self) -> bool:
        """Names, choices, paths: a line break in one is refused, never printed or sent on."""
        return self.kind is not Kind.LINES and self.secret is None
