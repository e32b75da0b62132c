#!/usr/bin/env python3
"""Write both actions' `inputs:` in action.yml and the input tables of their READMEs from the one declaration of
each action's inputs (image_tagger.rules.publishinputs, image_tagger.pullrequest.inputs).

    .venv/bin/python tools/gen_inputs.py           # rewrite what differs
    .venv/bin/python tools/gen_inputs.py --check   # exit 1 naming each file that differs (tests run this)

Only the `inputs:` block and the table under `| input | default | meaning |` change; every other line stays.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from image_tagger.model.inputspec import InputSpec
from image_tagger.pullrequest.inputs import PULL_REQUEST_INPUTS
from image_tagger.rules.publishinputs import PUBLISH_INPUTS

REPO = Path(__file__).resolve().parents[1]
WIDTH = 120
TABLE_HEADER = "| input | default | meaning |"


def action_inputs(specs: tuple[InputSpec, ...]) -> list[str]:
    """The `inputs:` block of an action.yml: a description on one line when it fits, else folded (`>-`)."""
    lines = ["inputs:"]
    for spec in specs:
        lines.append(f"  {spec.name}:")
        one = f"    description: {json.dumps(spec.description, ensure_ascii=False)}"
        if len(one) <= WIDTH:
            lines.append(one)
        else:
            lines += [
                "    description: >-",
                *textwrap.wrap(
                    spec.description, WIDTH, initial_indent=" " * 6, subsequent_indent=" " * 6, break_on_hyphens=False
                ),
            ]
        lines.append(f"    required: {str(spec.required).lower()}")
        if not spec.required:
            lines.append(f"    default: {json.dumps(spec.default, ensure_ascii=False)}")
    return lines


def readme_table(specs: tuple[InputSpec, ...]) -> list[str]:
    """The README's input table: name, default (or what empty stands for) and the longer meaning."""
    lines = [TABLE_HEADER, "| --- | --- | --- |"]
    for spec in specs:
        default = "(required)" if spec.required else f"`{spec.default}`" if spec.default else spec.empty or "empty"
        lines.append(f"| `{spec.name}` | {default} | {spec.meaning} |")
    return lines


def with_action_inputs(text: str, specs: tuple[InputSpec, ...]) -> str:
    """`text` (an action.yml) with its top-level `inputs:` block, up to the next top-level key, generated."""
    lines = text.splitlines()
    start = lines.index("inputs:")
    end = next(i for i in range(start + 1, len(lines)) if lines[i][:1] not in ("", " ", "#"))
    return "\n".join([*lines[:start], *action_inputs(specs), *lines[end:]]) + "\n"


def with_readme_table(text: str, specs: tuple[InputSpec, ...]) -> str:
    """`text` (a README) with its one input table, up to the first line that is not a table row, generated."""
    lines = text.splitlines()
    start = lines.index(TABLE_HEADER)
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join([*lines[:start], *readme_table(specs), *lines[end:]]) + "\n"


GENERATED: dict[str, tuple[Callable[[str, tuple[InputSpec, ...]], str], tuple[InputSpec, ...]]] = {
    "action.yml": (with_action_inputs, PUBLISH_INPUTS),
    "README.md": (with_readme_table, PUBLISH_INPUTS),
    "pull-request/action.yml": (with_action_inputs, PULL_REQUEST_INPUTS),
    "pull-request/README.md": (with_readme_table, PULL_REQUEST_INPUTS),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when a file differs")
    args = parser.parse_args(argv)
    stale = []
    for name, (generate, specs) in GENERATED.items():
        path = REPO / name
        text = path.read_text(encoding="utf-8")
        wanted = generate(text, specs)
        if wanted != text:
            stale.append(name)
            if not args.check:
                path.write_text(wanted, encoding="utf-8")
    for name in stale:
        print(f"{name}: {'differs from the declared inputs' if args.check else 'written'}", file=sys.stderr)
    if args.check and stale:
        print("run: .venv/bin/python tools/gen_inputs.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
