"""The README's tables that are read from the code rather than measured (never typed by hand).

    .venv/bin/python benchmarks/readme_tables.py    # rewrite those blocks in README.md
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FORMATS_BEGIN, FORMATS_END = "<!-- formats-table:begin (benchmarks/readme_tables.py writes this) -->", "<!-- formats-table:end -->"


def blocks() -> dict[tuple[str, str], str]:
    """(begin marker, end marker) -> the block's text."""
    from edgezoo.export import formats_markdown

    return {(FORMATS_BEGIN, FORMATS_END): formats_markdown()}


def main() -> int:
    from edgezoo.report import replace_block
    from edgezoo.fileio import write_text_atomic

    text = README.read_text()
    for (begin, end), body in blocks().items():
        text = replace_block(text, begin, end, body)
    write_text_atomic(README, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
