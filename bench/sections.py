"""BENCHMARKS.md is written by several scripts: each owns one section between its own markers."""

from __future__ import annotations

import re
from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def markers(script: str) -> tuple[str, str]:
    """The comment lines that open and close `script`'s section."""
    return f"<!-- {script}:begin -->", f"<!-- {script}:end -->"


def write_section(text: str, begin: str, end: str, path: Path = BENCHMARKS_MD,
                  new_file: str = "") -> None:
    """Replace the section in place, or append it; every other section is kept.

    `new_file` is what a missing file starts with (the introduction)."""
    current = path.read_text() if path.exists() else new_file
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(current):
        updated = pattern.sub(lambda _: text, current, count=1)
    else:
        updated = current.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(updated)
